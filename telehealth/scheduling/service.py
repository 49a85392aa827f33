"""Scheduling rules: who may see a patient (licensure on the appointment date), open slots, booking that
cannot double-book, holds that lapse, cancelling.

The database decides races: an INSERT that overlaps an occupying appointment of the same clinician (with
buffers) or of the same patient fails on an exclusion constraint and answers 409 with fresh slots.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import islice, repeat
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, Row, Uuid, any_, bindparam, func, literal_column, select, text, true, type_coerce, update
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import NullType
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.audit.service import Actor, record_audit_event
from telehealth.clinicians.models import ClinicianProfile, DeaRegistration, StateLicense
from telehealth.clinicians.service import holds_schedule_iii
from telehealth.intake.escalations import has_open_crisis
from telehealth.intake.service import latest_decision
from telehealth.lib.errors import Conflict, InvalidInput, NotFound, RuleRefused
from telehealth.lib.states import change_status
from telehealth.scheduling.models import OCCUPYING_SQL, Appointment, AppointmentTypeSettings, DateOverride, WeeklyHours
from telehealth.scheduling.notices import tell_patient
from telehealth.scheduling.slots import Availability, TimeRange, TypeSettings, clear_of_busy, open_slots, open_slots_sorted
from telehealth.scheduling.states import APPOINTMENT_TRANSITIONS, OCCUPYING, AppointmentStatus, AppointmentType
from telehealth.settings import Settings

HOLD_FOR = timedelta(minutes=15)
DEFAULT_DURATIONS = {AppointmentType.CONSULT: 45, AppointmentType.REASSESSMENT: 30, AppointmentType.INTEGRATION: 50}
CLINICIAN_ROLE = {
    AppointmentType.CONSULT: Role.PRESCRIBER,
    AppointmentType.REASSESSMENT: Role.PRESCRIBER,
    AppointmentType.INTEGRATION: Role.THERAPIST,
}
MAX_WINDOW = timedelta(days=31)


def type_settings(row: AppointmentTypeSettings | None, appointment_type: AppointmentType) -> TypeSettings:
    """A clinician's settings for a type, or the clinic defaults (duration by type, 10 min after, 12 h notice,
    30-day horizon, 15-min alignment)."""
    if row is None:
        return TypeSettings(duration=timedelta(minutes=DEFAULT_DURATIONS[appointment_type]), buffer_after=timedelta(minutes=10))
    return TypeSettings(
        duration=timedelta(minutes=row.duration_minutes),
        buffer_before=timedelta(minutes=row.buffer_before_minutes),
        buffer_after=timedelta(minutes=row.buffer_after_minutes),
        minimum_notice=timedelta(minutes=row.minimum_notice_minutes),
        horizon=timedelta(days=row.horizon_days),
        max_per_day=row.max_per_day,
        step=timedelta(minutes=row.step_minutes),
    )


# The statements of the slot search and the slot check are built once, with bound parameters: building a
# statement and its cache key on every call cost several times running it (credentials: 1.1 against 0.2 ms
# of app CPU). Id lists go as one `= ANY($1::uuid[])` parameter.


def _any_id(column: Any) -> Any:
    return column == any_(bindparam("ids", type_=ARRAY(Uuid())))


def _plain(column: Any) -> Any:
    """A UTC timestamp column read as it comes from asyncpg (already UTC), without UTCDateTime's per-value hook."""
    return type_coerce(column, DateTime(timezone=True))


@lru_cache(maxsize=None)
def _credentialed_statement(*, prescriber: bool, one_clinician: bool) -> Any:
    if not prescriber:  # therapists: the state's licences, the latest per clinician
        license = select(StateLicense.clinician_id, func.max(StateLicense.expires_on).label("until")).where(
            StateLicense.state == bindparam("state"), StateLicense.expires_on >= bindparam("on_or_after")
        )
        if one_clinician:
            license = license.where(StateLicense.clinician_id == bindparam("clinician_id"))
        licensed = license.group_by(StateLicense.clinician_id).subquery("licensed")
        query = select(UserAccount.id).join(licensed, licensed.c.clinician_id == UserAccount.id)
        valid_through: Any = licensed.c.until
    else:
        # Prescribers start from their Schedule III DEA registration in the state (one per clinician and state,
        # uq_dea_registration_clinician_id_state), and each one's latest licence there is one index probe
        # (LATERAL). Joined to a GROUP BY of the licences instead, the generic plan PostgreSQL switches a
        # prepared statement to (it guesses the LIKE keeps 3 rows) compared every registration with every
        # licence: 35 s a search for 20,000 prescribers (docs/benchmarks.md, "Growth at 10x and 100x").
        licensed = (
            select(func.max(StateLicense.expires_on).label("until"))
            .where(StateLicense.clinician_id == DeaRegistration.clinician_id, StateLicense.state == bindparam("state"),
                   StateLicense.expires_on >= bindparam("on_or_after"))
            .lateral("licensed")
        )  # fmt: skip
        query = (
            select(UserAccount.id)
            .select_from(DeaRegistration)
            .join(UserAccount, UserAccount.id == DeaRegistration.clinician_id)
            .join(licensed, true())
            .where(
                DeaRegistration.state == bindparam("state"), DeaRegistration.expires_on >= bindparam("on_or_after"),
                holds_schedule_iii(DeaRegistration.schedules), licensed.c.until.is_not(None),
            )  # fmt: skip
        )
        if one_clinician:
            query = query.where(DeaRegistration.clinician_id == bindparam("clinician_id"))
        valid_through = func.least(licensed.c.until, DeaRegistration.expires_on)
    return (
        query.add_columns(valid_through.label("valid_through"), UserAccount.full_name, ClinicianProfile.timezone)
        .outerjoin(ClinicianProfile, ClinicianProfile.user_id == UserAccount.id)
        .where(UserAccount.role == bindparam("role"), UserAccount.is_active.is_(True))
    )


async def _credentialed(
    session: AsyncSession, *, appointment_type: AppointmentType, state: str, on_or_after: date, clinician_id: uuid.UUID | None = None
) -> list[Row[Any]]:
    """(id, valid_through, full_name, timezone) of every clinician who may see a patient of `state` for this
    type (or of that one clinician): one statement."""
    role = CLINICIAN_ROLE[appointment_type]
    statement = _credentialed_statement(prescriber=role is Role.PRESCRIBER, one_clinician=clinician_id is not None)
    parameters: dict[str, Any] = {"state": state, "on_or_after": on_or_after, "role": role.value}
    if clinician_id is not None:
        parameters["clinician_id"] = clinician_id
    return list((await session.execute(statement, parameters)).all())


async def credentials_valid_through(
    session: AsyncSession, *, appointment_type: AppointmentType, state: str, on_or_after: date
) -> dict[uuid.UUID, date]:
    """Clinicians who may see a patient of `state` for this type, with the last date they may (prescribers:
    the earlier of license and Schedule III DEA expiry; therapists: their license's)."""
    rows = await _credentialed(session, appointment_type=appointment_type, state=state, on_or_after=on_or_after)
    return {row.id: row.valid_through for row in rows}


@dataclass(slots=True)
class ClinicianCalendar:
    """Everything the slot engine needs about one clinician, loaded for many clinicians in a few queries."""

    availability: Availability
    settings_row: AppointmentTypeSettings | None
    occupying: list[Row[Any]]  # id, clinician_id, appointment_type, status, starts_at, busy_from, busy_until, hold_expires_at


_SETTINGS_COLUMNS = (
    "duration_minutes", "buffer_before_minutes", "buffer_after_minutes", "minimum_notice_minutes", "horizon_days", "max_per_day", "step_minutes",
)  # fmt: skip


def _with_calendar(query: Any) -> Any:
    """A select from user_account with each clinician's calendar but its busy times added: the week as one
    text ("0 09:00:00 17:00:00,1 ..."), the window's date overrides as one text ("2027-01-12 off,2027-01-13
    extra 14:00:00 15:00:00") and the type's settings; one row per clinician, whatever their hours."""
    week = (
        select(
            func.string_agg(
                func.concat_ws(" ", WeeklyHours.weekday, WeeklyHours.starts_at_local, WeeklyHours.ends_at_local),
                aggregate_order_by(literal_column("','"), WeeklyHours.weekday, WeeklyHours.starts_at_local),
            )
        )
        .where(WeeklyHours.clinician_id == UserAccount.id)
        .scalar_subquery()
    )  # fmt: skip
    overrides = (
        select(
            func.string_agg(
                func.concat_ws(" ", DateOverride.on_date, DateOverride.kind, DateOverride.starts_at_local, DateOverride.ends_at_local),
                aggregate_order_by(literal_column("','"), DateOverride.on_date, DateOverride.starts_at_local),
            )
        )
        .where(DateOverride.clinician_id == UserAccount.id, DateOverride.on_date >= bindparam("first_day"), DateOverride.on_date <= bindparam("last_day"))
        .scalar_subquery()
    )  # fmt: skip
    settings = [getattr(AppointmentTypeSettings, name) for name in _SETTINGS_COLUMNS]
    return query.add_columns(week.label("week"), overrides.label("overrides"), *settings).outerjoin(
        AppointmentTypeSettings,
        (AppointmentTypeSettings.clinician_id == UserAccount.id) & (AppointmentTypeSettings.appointment_type == bindparam("appointment_type")),
    )


@lru_cache(maxsize=None)
def _calendars_statement(*, prescriber: bool, one_clinician: bool) -> Any:
    return _with_calendar(_credentialed_statement(prescriber=prescriber, one_clinician=one_clinician))


_CALENDARS_BY_ID = _with_calendar(
    select(UserAccount.id, ClinicianProfile.timezone)
    .outerjoin(ClinicianProfile, ClinicianProfile.user_id == UserAccount.id)
    .where(_any_id(UserAccount.id))
)


def _calendar_parameters(appointment_type: AppointmentType, window_start: datetime, window_end: datetime) -> dict[str, Any]:
    return {
        "appointment_type": appointment_type.value,
        "first_day": (window_start - timedelta(days=1)).date(), "last_day": (window_end + timedelta(days=1)).date(),
    }  # fmt: skip


def _calendar_from(row: Row[Any], appointment_type: AppointmentType) -> ClinicianCalendar:
    settings_row = None
    if row.duration_minutes is not None:  # the clinician has their own settings for this type
        values = {name: getattr(row, name) for name in _SETTINGS_COLUMNS}
        settings_row = AppointmentTypeSettings(clinician_id=row.id, appointment_type=appointment_type.value, **values)
    return ClinicianCalendar(availability=_availability(row.timezone, row.week, row.overrides), settings_row=settings_row, occupying=[])


async def _credentialed_calendars(
    session: AsyncSession, *, appointment_type: AppointmentType, state: str, window_start: datetime, window_end: datetime,
    clinician_id: uuid.UUID | None = None,
) -> list[tuple[Row[Any], ClinicianCalendar]]:  # fmt: skip
    """Every clinician who may see a patient of `state` for this type from the window's first day (or that
    one clinician), with their calendar (nothing occupying yet): one statement."""
    role = CLINICIAN_ROLE[appointment_type]
    statement = _calendars_statement(prescriber=role is Role.PRESCRIBER, one_clinician=clinician_id is not None)
    parameters = {"state": state, "on_or_after": window_start.date(), "role": role.value} | _calendar_parameters(appointment_type, window_start, window_end)
    if clinician_id is not None:
        parameters["clinician_id"] = clinician_id
    return [(row, _calendar_from(row, appointment_type)) for row in (await session.execute(statement, parameters)).all()]


@lru_cache(maxsize=1024)
def _availability(zone: str | None, week: str | None, overrides: str | None) -> Availability:
    """A clinician's hours from the texts of _calendars_statement (shared by clinicians with the same ones)."""
    days_off: set[date] = set()
    extra: dict[date, list[TimeRange]] = {}
    for item in overrides.split(",") if overrides else ():
        on_date, kind, *hours = item.split(" ")
        if kind == "off":
            days_off.add(date.fromisoformat(on_date))
        else:
            extra.setdefault(date.fromisoformat(on_date), []).append(TimeRange(time.fromisoformat(hours[0]), time.fromisoformat(hours[1])))
    return Availability(
        zone=_zone(zone), weekly=_week(week), days_off=frozenset(days_off), extra={day: tuple(ranges) for day, ranges in extra.items()}
    )


@lru_cache(maxsize=1024)
def _week(hours: str | None) -> dict[int, tuple[TimeRange, ...]]:
    """A week of hours from its text, "weekday start end" items in order (shared: never change the answer)."""
    week: dict[int, list[TimeRange]] = {}
    for item in hours.split(",") if hours else ():
        weekday, opens, closes = item.split(" ")
        week.setdefault(int(weekday), []).append(TimeRange(time.fromisoformat(opens), time.fromisoformat(closes)))
    return {weekday: tuple(ranges) for weekday, ranges in week.items()}


@lru_cache(maxsize=64)
def _zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or "America/New_York")


def _reach(calendars: list[ClinicianCalendar], appointment_type: AppointmentType) -> timedelta:
    """How far outside a window an appointment can still matter to a start inside it: its span with both
    buffers; a whole day when a daily limit counts the appointments of the window's local days."""
    timings = [_timing(calendar.settings_row, appointment_type) for calendar in calendars]
    if any(timing.max_per_day is not None for timing in timings):
        return timedelta(days=1)
    return max((timing.buffer_before + timing.duration + timing.buffer_after for timing in timings), default=timedelta(0))


_UTC = DateTime(timezone=True)
_HALF_OPEN = literal_column("'[)'")  # literal, so even a generic plan matches the index expression


def _occupying_within() -> list[Any]:
    """Held or booked appointments of the clinicians (`ids`) whose busy span overlaps [after, before): written
    as the exclusion constraint's own index expression, with the statuses literal as in its WHERE, so
    PostgreSQL can use ex_appointment_clinician_busy (only occupying rows, never the growing history)."""
    return [
        _any_id(Appointment.clinician_id), text(f"appointment.{OCCUPYING_SQL}"),
        func.tstzrange(Appointment.busy_from, Appointment.busy_until, _HALF_OPEN).op("&&")(
            func.tstzrange(bindparam("after", type_=_UTC), bindparam("before", type_=_UTC), _HALF_OPEN)
        ),
    ]


_OCCUPYING_SPANS = select(
    Appointment.id, Appointment.clinician_id, Appointment.appointment_type, Appointment.status, _plain(Appointment.starts_at),
    _plain(Appointment.busy_from), _plain(Appointment.busy_until), _plain(Appointment.hold_expires_at),
).where(*_occupying_within())


_BUSY_SPANS = (
    select(
        Appointment.clinician_id,
        # Read as asyncpg decodes them (lists of UTC datetimes), without a per-item hook.
        type_coerce(func.array_agg(aggregate_order_by(Appointment.busy_from, Appointment.busy_from)), NullType()),
        type_coerce(func.array_agg(aggregate_order_by(Appointment.busy_until, Appointment.busy_from)), NullType()),
    )
    .where(
        *_occupying_within(),
        (Appointment.status == AppointmentStatus.BOOKED.value) | (Appointment.hold_expires_at > bindparam("now")),  # not a lapsed hold
    )
    .group_by(Appointment.clinician_id)
)  # fmt: skip


async def _load_busy_spans(
    session: AsyncSession, *, clinician_ids: list[uuid.UUID], window_start: datetime, window_end: datetime, reach: timedelta, now: datetime
) -> dict[uuid.UUID, tuple[list[datetime], list[datetime]]]:
    """The busy spans (starts, ends, sorted by start) of held and booked appointments reaching into the
    window, lapsed holds left out, aggregated per clinician by the database: what the slot engine needs when
    no daily limit counts appointments, in one row per clinician."""
    rows = await session.execute(_BUSY_SPANS, {"ids": clinician_ids, "after": window_start - reach, "before": window_end + reach, "now": now})
    return {cid: (starts, ends) for cid, starts, ends in rows.all()}


async def _load_occupying(
    session: AsyncSession, *, clinician_ids: list[uuid.UUID], window_start: datetime, window_end: datetime, reach: timedelta = timedelta(days=1)
) -> dict[uuid.UUID, list[Row[Any]]]:
    """The held and booked appointments of these clinicians that reach into the window (by `reach`; a day
    unless the caller knows better), as plain rows: thousands load several times faster than ORM objects."""
    rows = await session.execute(_OCCUPYING_SPANS, {"ids": clinician_ids, "after": window_start - reach, "before": window_end + reach})
    occupying: dict[uuid.UUID, list[Row[Any]]] = {}
    for appointment in rows.all():
        occupying.setdefault(appointment.clinician_id, []).append(appointment)
    return occupying


async def load_calendars(
    session: AsyncSession, *, clinician_ids: list[uuid.UUID], appointment_type: AppointmentType,
    window_start: datetime, window_end: datetime,
) -> dict[uuid.UUID, ClinicianCalendar]:  # fmt: skip
    """Hours, overrides, settings and occupying appointments of every clinician asked for: two statements in
    all, not five per clinician."""
    if not clinician_ids:
        return {}
    parameters = {"ids": clinician_ids} | _calendar_parameters(appointment_type, window_start, window_end)
    calendars = {row.id: _calendar_from(row, appointment_type) for row in (await session.execute(_CALENDARS_BY_ID, parameters)).all()}
    for cid in clinician_ids:  # no account row: no hours
        calendars.setdefault(cid, ClinicianCalendar(availability=_availability(None, None, None), settings_row=None, occupying=[]))
    occupying = await _load_occupying(
        session, clinician_ids=clinician_ids, window_start=window_start, window_end=window_end, reach=_reach(list(calendars.values()), appointment_type)
    )  # fmt: skip
    for cid, calendar in calendars.items():
        calendar.occupying = occupying.get(cid, [])
    return calendars


def slots_from_calendar(
    calendar: ClinicianCalendar, *, appointment_type: AppointmentType, window_start: datetime, window_end: datetime,
    now: datetime, valid_through: date, ignore: uuid.UUID | None = None,
) -> list[datetime]:  # fmt: skip
    """One clinician's open starts in a window, none after their credentials lapse (pure)."""
    timing = _timing(calendar.settings_row, appointment_type)
    zone = calendar.availability.zone
    busy: list[tuple[datetime, datetime]] = []
    per_day: dict[date, int] = {}
    for appointment in calendar.occupying:
        if appointment.id == ignore or (appointment.status == AppointmentStatus.HELD and appointment.hold_expires_at and appointment.hold_expires_at <= now):
            continue  # the appointment being moved, or a lapsed hold
        busy.append((appointment.busy_from, appointment.busy_until))
        if timing.max_per_day is not None and appointment.appointment_type == appointment_type.value:
            local_day = appointment.starts_at.astimezone(zone).date()
            per_day[local_day] = per_day.get(local_day, 0) + 1
    return open_slots(
        calendar.availability, timing, busy, window_start=window_start, window_end=min(window_end, _lapse(valid_through, zone)), now=now,
        booked_per_day=per_day,
    )  # fmt: skip


@lru_cache(maxsize=1024)
def _lapse(valid_through: date, zone: ZoneInfo) -> datetime:
    """Nothing after the credentials lapse: midnight (the clinician's) after the last valid day."""
    return datetime.combine(valid_through + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


_DEFAULT_TIMINGS = {kind: type_settings(None, kind) for kind in AppointmentType}


def _timing(settings_row: AppointmentTypeSettings | None, appointment_type: AppointmentType) -> TypeSettings:
    return _DEFAULT_TIMINGS[appointment_type] if settings_row is None else type_settings(settings_row, appointment_type)


async def clinician_slots(
    session: AsyncSession, *, clinician_id: uuid.UUID, appointment_type: AppointmentType, window_start: datetime,
    window_end: datetime, now: datetime, valid_through: date, ignore: uuid.UUID | None = None,
) -> list[datetime]:  # fmt: skip
    """One clinician's open starts for a type in a window, none after their credentials lapse."""
    calendars = await load_calendars(
        session, clinician_ids=[clinician_id], appointment_type=appointment_type, window_start=window_start, window_end=window_end
    )
    return slots_from_calendar(
        calendars[clinician_id], appointment_type=appointment_type, window_start=window_start, window_end=window_end,
        now=now, valid_through=valid_through, ignore=ignore,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Slot:
    clinician_id: uuid.UUID
    clinician_name: str
    starts_at: datetime


async def find_slots(
    session: AsyncSession, *, patient: Patient, appointment_type: AppointmentType, window_start: datetime,
    window_end: datetime, now: datetime, clinician_id: uuid.UUID | None = None, limit: int | None = None,
) -> list[Slot]:  # fmt: skip
    """Open starts from every clinician who may see this patient (or one of them), soonest first; with a
    `limit`, only the first that many (the window is walked a day at a time and stops once it has them)."""
    if window_end <= window_start or window_end - window_start > MAX_WINDOW:
        raise InvalidInput("slots.window_invalid", "Ask for a window of up to 31 days.", fields={"to": "must be after from, within 31 days"})
    if not patient.state_of_residence:
        raise RuleRefused("slots.no_state", "We need your state of residence before showing appointments.")
    # Credentials, hours, overrides and settings once for the window; busy spans a day at a time, only as far as needed.
    loaded = await _credentialed_calendars(
        session, appointment_type=appointment_type, state=patient.state_of_residence, window_start=window_start, window_end=window_end,
        clinician_id=clinician_id,
    )  # fmt: skip
    if not loaded:
        return []
    clinicians = [row for row, _ in loaded]
    calendars = {row.id: calendar for row, calendar in loaded}
    ids = [row.id for row in clinicians]
    timings = {row.id: _timing(calendars[row.id].settings_row, appointment_type) for row in clinicians}
    limited = [row.id for row in clinicians if timings[row.id].max_per_day is not None]  # daily limits count rows
    reach = _reach([calendars[row.id] for row in clinicians if timings[row.id].max_per_day is None] or [], appointment_type)
    # Per clinician, what every chunk needs: their calendar, timing and the instant their credentials lapse.
    plans = [
        (index, row, calendars[row.id], timings[row.id], _lapse(row.valid_through, calendars[row.id].availability.zone))
        for index, row in enumerate(clinicians)
    ]  # fmt: skip
    found: list[Slot] = []
    chunk_start = window_start
    while chunk_start < window_end and (limit is None or len(found) < limit):
        chunk_end = min(window_end, chunk_start + timedelta(days=1)) if limit is not None else window_end
        spans = await _load_busy_spans(session, clinician_ids=ids, window_start=chunk_start, window_end=chunk_end, reach=reach, now=now)
        occupying = await _load_occupying(session, clinician_ids=limited, window_start=chunk_start, window_end=chunk_end) if limited else {}
        streams = []
        unbooked: dict[tuple[int, int, datetime], list[datetime]] = {}  # per shared calendar and timing, see clear_of_busy
        for index, row, calendar, timing, lapse in plans:
            if timing.max_per_day is None:
                until = min(chunk_end, lapse)
                shared = (id(calendar.availability), id(timing), until)  # _availability and _DEFAULT_TIMINGS share objects
                if shared not in unbooked:
                    unbooked[shared] = open_slots_sorted(calendar.availability, timing, [], [], window_start=chunk_start, window_end=until, now=now)
                starts = clear_of_busy(unbooked[shared], timing, *spans.get(row.id, _NOTHING_BUSY))
            else:
                calendar.occupying = occupying.get(row.id, [])
                starts = slots_from_calendar(
                    calendar, appointment_type=appointment_type, window_start=chunk_start, window_end=chunk_end, now=now,
                    valid_through=row.valid_through,
                )  # fmt: skip
            if starts:
                streams.append(zip(starts, repeat(row.full_name), repeat(index)))
        # Soonest first (then by name): merge the clinicians' sorted starts, taking only as many as still wanted.
        merged = heapq.merge(*streams)
        wanted = merged if limit is None else islice(merged, limit - len(found))
        found.extend(Slot(clinicians[index].id, name, start) for start, name, index in wanted)
        chunk_start = chunk_end
    return found


_NOTHING_BUSY: tuple[list[datetime], list[datetime]] = ([], [])


async def _may_book(session: AsyncSession, *, patient: Patient, appointment_type: AppointmentType) -> None:
    """The patient-side gates: screening allows it and no crisis waits for a clinician's contact."""
    if await has_open_crisis(session, patient_id=patient.id):
        raise RuleRefused(
            "booking.crisis_contact_pending",
            "Before booking, a clinician needs to speak with you. We will call you soon; if you need help now, call or text 988.",
        )
    if appointment_type is AppointmentType.CONSULT:
        decision = await latest_decision(session, patient_id=patient.id)
        if decision is None or decision.outcome not in ("eligible", "needs_review"):
            raise RuleRefused("booking.screening_required", "Booking opens once your intake is complete and screening allows it.")
    elif appointment_type is AppointmentType.REASSESSMENT:
        from telehealth.prescribing.reassessment import needs_reassessment  # prescribing builds on scheduling

        if not await needs_reassessment(session, patient_id=patient.id):
            raise RuleRefused(
                "booking.reassessment_needs_plan",
                "A reassessment is booked once your plan needs one: after its last session, or every 6 sessions.",
            )
    else:
        decision = await latest_decision(session, patient_id=patient.id)
        if decision is None or decision.outcome == "ineligible":
            raise RuleRefused("booking.not_enrolled", "Integration sessions are for patients enrolled in the program.")


def _around(starts_at: datetime) -> tuple[datetime, datetime]:
    """The window a booking checks and offers fresh slots from: the clinician's whole day around `starts_at`
    wherever they are (14 hours before to 14 after)."""
    window_start = starts_at - timedelta(hours=14)
    return window_start, window_start + timedelta(days=1, hours=4)


async def _clinician_around(
    session: AsyncSession, *, patient: Patient, clinician_id: uuid.UUID, appointment_type: AppointmentType, starts_at: datetime
) -> tuple[Row[Any] | None, ClinicianCalendar | None]:
    """One clinician's credentials for this patient and calendar around `starts_at` (two statements), or
    (None, None) when they may not see the patient then."""
    if not patient.state_of_residence:
        raise RuleRefused("slots.no_state", "We need your state of residence before showing appointments.")
    window_start, window_end = _around(starts_at)
    loaded = await _credentialed_calendars(
        session, appointment_type=appointment_type, state=patient.state_of_residence, window_start=window_start, window_end=window_end,
        clinician_id=clinician_id,
    )  # fmt: skip
    if not loaded:
        return None, None
    credentials, calendar = loaded[0]
    await _reload_occupying(session, calendar, clinician_id=clinician_id, appointment_type=appointment_type, starts_at=starts_at)
    return credentials, calendar


async def _reload_occupying(
    session: AsyncSession, calendar: ClinicianCalendar, *, clinician_id: uuid.UUID, appointment_type: AppointmentType, starts_at: datetime
) -> None:
    window_start, window_end = _around(starts_at)
    reach = _reach([calendar], appointment_type)
    calendar.occupying = (await _load_occupying(session, clinician_ids=[clinician_id], window_start=window_start, window_end=window_end, reach=reach)).get(
        clinician_id, []
    )


def _offered_around(
    credentials: Row[Any] | None, calendar: ClinicianCalendar | None, *, appointment_type: AppointmentType, starts_at: datetime, now: datetime
) -> list[Slot]:
    if credentials is None or calendar is None:
        return []
    window_start, window_end = _around(starts_at)
    starts = slots_from_calendar(
        calendar, appointment_type=appointment_type, window_start=window_start, window_end=window_end, now=now, valid_through=credentials.valid_through
    )
    return [Slot(credentials.id, credentials.full_name, start) for start in starts]


_APPOINTMENT = Appointment.__table__  # Core statements on the table: no ORM bookkeeping for one row
_EXPIRE_LAPSED_HOLDS_IN_THE_WAY = (
    update(_APPOINTMENT)
    .where(
        _APPOINTMENT.c.status == AppointmentStatus.HELD.value, _APPOINTMENT.c.hold_expires_at <= bindparam("now"),
        (_APPOINTMENT.c.clinician_id == bindparam("the_clinician")) | (_APPOINTMENT.c.patient_id == bindparam("the_patient")),
        _APPOINTMENT.c.busy_from < bindparam("span_end"), _APPOINTMENT.c.busy_until > bindparam("span_start"),
    )
    .values(status=AppointmentStatus.EXPIRED.value)
)  # fmt: skip
_INSERT_UNLESS_TAKEN = pg_insert(_APPOINTMENT).on_conflict_do_nothing().returning(_APPOINTMENT.c.id)
_PATIENT_BUSY = select(
    select(_APPOINTMENT.c.id)
    .where(
        _APPOINTMENT.c.patient_id == bindparam("patient_id"), _APPOINTMENT.c.status.in_([s.value for s in OCCUPYING]),
        _APPOINTMENT.c.starts_at < bindparam("span_end"), _APPOINTMENT.c.ends_at > bindparam("span_start"),
    )
    .exists()
)  # fmt: skip


async def book_appointment(
    session: AsyncSession, *, patient: Patient, clinician_id: uuid.UUID, appointment_type: AppointmentType,
    starts_at: datetime, hold: bool, actor: Actor, now: datetime, settings: Settings, hold_for: timedelta = HOLD_FOR,
) -> Appointment:  # fmt: skip
    """Hold (15 min unless `hold_for` says otherwise) or book one slot. Losing a race to the same time answers 409 with fresh slots."""
    await _may_book(session, patient=patient, appointment_type=appointment_type)
    # The slot check needs only this clinician's day: their credentials, hours and busy spans around it.
    credentials, calendar = await _clinician_around(session, patient=patient, clinician_id=clinician_id, appointment_type=appointment_type, starts_at=starts_at)
    offered = _offered_around(credentials, calendar, appointment_type=appointment_type, starts_at=starts_at, now=now)
    if starts_at not in {slot.starts_at for slot in offered}:
        raise _slot_taken(offered)
    assert calendar is not None
    timing = type_settings(calendar.settings_row, appointment_type)
    ends_at = starts_at + timing.duration
    busy_from, busy_until = starts_at - timing.buffer_before, ends_at + timing.buffer_after
    # Lapsed holds in the way give their time back now, not only when the sweep comes by.
    await session.execute(
        _EXPIRE_LAPSED_HOLDS_IN_THE_WAY,
        {"now": now, "the_clinician": clinician_id, "the_patient": patient.id, "span_start": busy_from, "span_end": busy_until},
    )
    appointment = Appointment(
        appointment_type=appointment_type.value, clinician_id=clinician_id, patient_id=patient.id,
        status=AppointmentStatus.HELD if hold else AppointmentStatus.BOOKED, starts_at=starts_at, ends_at=ends_at,
        busy_from=busy_from, busy_until=busy_until, hold_expires_at=now + hold_for if hold else None,
        room_token=secrets.token_urlsafe(24), created_at=now,
    )  # fmt: skip
    if not await _insert_unless_taken(session, appointment):
        # Someone else's appointment took the time first (their transaction has ended: the INSERT waited for it).
        await _reload_occupying(session, calendar, clinician_id=clinician_id, appointment_type=appointment_type, starts_at=starts_at)
        fresh = _offered_around(credentials, calendar, appointment_type=appointment_type, starts_at=starts_at, now=now)
        if starts_at in {slot.starts_at for slot in fresh} and await _patient_busy(session, patient_id=patient.id, starts_at=starts_at, ends_at=ends_at):
            raise Conflict("appointment.patient_overlap", "You already have an appointment at that time.")
        raise _slot_taken(fresh)
    await record_audit_event(
        session, actor=actor, action=f"appointment.{'hold' if hold else 'book'}", resource_type="appointment",
        resource_id=appointment.id, patient_id=patient.id, now=now,
    )  # fmt: skip
    if not hold:  # a hold is told about when it is confirmed (by payment, in billing)
        await tell_patient(session, appointment, now=now, settings=settings)
    return appointment


async def _insert_unless_taken(session: AsyncSession, appointment: Appointment) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: the exclusion constraints decide, as for any write, but as a
    speculative insertion, which waits for a racing inserter's transaction to end instead of deadlocking
    with it (two plain INSERTs of overlapping rows can, and each deadlock costs PostgreSQL's
    deadlock_timeout, 1 s). A plain write racing it (a reschedule's UPDATE) can still deadlock with it, so
    it runs in write_or_find_conflict's savepoint and retry. Answers whether the row was stored; then
    `appointment` is in the session as that row."""
    values = {column.key: getattr(appointment, column.key) for column in _APPOINTMENT.columns}
    stored: list[uuid.UUID | None] = []

    async def insert() -> None:
        stored[:] = [await session.scalar(_INSERT_UNLESS_TAKEN, values)]

    if await write_or_find_conflict(session, insert) is not None or not stored or stored[0] is None:
        return False
    make_transient_to_detached(appointment)  # the row as written: no SELECT to load it back
    session.add(appointment)
    return True


async def _patient_busy(session: AsyncSession, *, patient_id: uuid.UUID, starts_at: datetime, ends_at: datetime) -> bool:
    """Whether the patient holds or has booked another appointment overlapping [starts_at, ends_at)."""
    return bool(await session.scalar(_PATIENT_BUSY, {"patient_id": patient_id, "span_start": starts_at, "span_end": ends_at}))


EXCLUSION_VIOLATION, DEADLOCK_DETECTED = "23P01", "40P01"


async def write_or_find_conflict(session: AsyncSession, write: Callable[[], Awaitable[None]], *, attempts: int = 6) -> str | None:
    """Run one INSERT or UPDATE of an appointment in a savepoint; answer None when it stored, or the message
    naming the exclusion constraint it hit. Two writes that conflict on an exclusion constraint can also
    deadlock on each other (PostgreSQL, execIndexing.c): the victim tries again and then meets the
    winner's row as an ordinary conflict, so a race never answers 500."""
    for attempt in range(attempts):
        try:
            async with session.begin_nested():
                await write()
            return None
        except DBAPIError as error:
            state = getattr(error.orig, "sqlstate", None)
            if state == EXCLUSION_VIOLATION:
                return str(error.orig)
            if state == DEADLOCK_DETECTED and attempt + 1 < attempts:
                await asyncio.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # jitter: racers stop colliding
                continue
            raise
    raise AssertionError("unreachable")  # the loop returns or raises


def _slot_taken(fresh: list[Slot]) -> Conflict:
    return Conflict(
        "appointment.slot_taken",
        "That time was just taken or is no longer open. Here are the times still free.",
        extra={"slots": [{"clinician_id": str(s.clinician_id), "starts_at": s.starts_at.isoformat()} for s in fresh[:20]]},
    )


async def expire_lapsed_holds(session: AsyncSession, *, now: datetime) -> int:
    """Holds past their time lapse (the time is offered again); answers how many."""
    due = (
        await session.execute(
            select(Appointment.id, Appointment.patient_id)
            .where(Appointment.status == AppointmentStatus.HELD, Appointment.hold_expires_at <= now)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for appointment_id, patient_id in due:
        await change_status(
            session, Appointment, appointment_id, table=APPOINTMENT_TRANSITIONS, source=AppointmentStatus.HELD,
            target=AppointmentStatus.EXPIRED, actor=Actor.system(), now=now, patient_id=patient_id,
        )  # fmt: skip
    return len(due)


async def patient_appointment(session: AsyncSession, *, patient: Patient, appointment_id: uuid.UUID) -> Appointment:
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != patient.id:
        raise NotFound("appointment.not_found", "No appointment with this id is yours.")
    return appointment


async def patient_appointments(session: AsyncSession, *, patient: Patient, since: datetime) -> list[Appointment]:
    rows = await session.execute(
        select(Appointment).where(Appointment.patient_id == patient.id, Appointment.ends_at >= since).order_by(Appointment.starts_at)
    )
    return list(rows.scalars())


async def book_follow_up(
    session: AsyncSession, *, therapist: UserAccount, patient: Patient, starts_at: datetime, actor: Actor, now: datetime, settings: Settings
) -> Appointment:
    """A therapist books an integration session for one of their own patients, from their own hours.
    (The caller has checked the care team with `load_patient_for`.)"""
    if therapist.role != Role.THERAPIST.value:
        raise RuleRefused("booking.therapist_only", "Only therapists book integration follow-ups.")
    return await book_appointment(
        session, patient=patient, clinician_id=therapist.id, appointment_type=AppointmentType.INTEGRATION,
        starts_at=starts_at, hold=False, actor=actor, now=now, settings=settings,
    )  # fmt: skip


async def clinician_calendar(session: AsyncSession, *, clinician_id: uuid.UUID, start: datetime, end: datetime) -> list[tuple[Appointment, str]]:
    """A clinician's held and booked appointments in a window, with each patient's name."""
    rows = await session.execute(
        select(Appointment, UserAccount.full_name)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(UserAccount, UserAccount.id == Patient.user_id)
        .where(Appointment.clinician_id == clinician_id, Appointment.status.in_([s.value for s in OCCUPYING]),
               Appointment.starts_at < end, Appointment.ends_at > start)
        .order_by(Appointment.starts_at)
    )  # fmt: skip
    return [(appointment, name) for appointment, name in rows.all()]
