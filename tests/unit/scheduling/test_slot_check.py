"""The booking's check of one start (scheduling.service._open_at) answers what the clinician's whole day of open
starts says, for every instant of the day: alignment, buffers, busy spans, lapsed holds, the daily limit, notice
and the credentials' lapse."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from telehealth.scheduling.calendars import ClinicianCalendar, CredentialedRow, OccupyingRow
from telehealth.scheduling.models import AppointmentTypeSettings
from telehealth.scheduling.service import _around, _open_at, slots_from_calendar
from telehealth.scheduling.slots import Availability, TimeRange
from telehealth.scheduling.states import AppointmentType

NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
DAY = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # Tuesday 00:00 in New York


def _occupying(
    clinician: uuid.UUID, local_start: time, minutes: int, *, status: str = "booked", expires: datetime | None = None
) -> OccupyingRow:
    start = datetime.combine(date(2026, 11, 24), local_start, tzinfo=NEW_YORK).astimezone(UTC)
    end = start + timedelta(minutes=minutes)
    return OccupyingRow(uuid.uuid4(), clinician, "consult", status, start, start, end + timedelta(minutes=10), expires)


@pytest.mark.parametrize("limit", [None, 2])
@pytest.mark.parametrize("valid_through", [date(2030, 1, 1), date(2026, 11, 24)])
def test_one_starts_check_agrees_with_the_days_open_starts(limit: int | None, valid_through: date) -> None:
    clinician = uuid.uuid4()
    settings_row = AppointmentTypeSettings(
        clinician_id=clinician,
        appointment_type="consult",
        duration_minutes=45,
        buffer_before_minutes=5,
        buffer_after_minutes=10,
        minimum_notice_minutes=60 * 24,  # Tuesday before 10:00 New York is too soon
        horizon_days=30,
        max_per_day=limit,
        step_minutes=20,
    )
    availability = Availability(zone=NEW_YORK, weekly={1: (TimeRange(time(8, 10), time(12)), TimeRange(time(13), time(22)))})
    occupying = [
        _occupying(clinician, time(14), 45),
        _occupying(clinician, time(16, 30), 45, status="held", expires=NOW - timedelta(minutes=1)),  # lapsed: free again
        _occupying(clinician, time(18), 45, status="held", expires=NOW + timedelta(minutes=10)),
    ]
    calendar = ClinicianCalendar(availability, settings_row, occupying)
    credentials = CredentialedRow(clinician, valid_through, "Rx", "America/New_York", None, None, *([None] * 7))
    kind = AppointmentType.CONSULT
    for minute in range(0, 24 * 60, 5):
        start = DAY + timedelta(minutes=minute)
        window_start, window_end = _around(start)
        whole_day = slots_from_calendar(
            calendar, appointment_type=kind, window_start=window_start, window_end=window_end, now=NOW, valid_through=valid_through
        )
        assert _open_at(credentials, calendar, appointment_type=kind, starts_at=start, now=NOW) == (start in whole_day), start
