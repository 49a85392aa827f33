"""Scheduling rules: who may see a patient (licensure on the appointment date), open slots, booking that
cannot double-book, holds that lapse. Whether the patient may book at all, and what it costs, is
telehealth.booking's: it calls take_slot once its gates pass.

The database decides races: an INSERT that overlaps an occupying appointment of the same clinician (with
buffers) or of the same patient fails on an exclusion constraint and answers 409 with fresh slots.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from itertools import chain
from typing import NamedTuple, Protocol

from sqlalchemy import bindparam
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.audit.service import change_status, record_audit_event
from telehealth.care_teams import service as care_teams
from telehealth.db import driver
from telehealth.db.base import table_of
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, NotFound, RuleRefused
from telehealth.scheduling.calendars import (
    ClinicianCalendar,
    CredentialedRow,
    credentialed_calendars,
    lapse_instant,
    load_busy_spans,
    load_calendars,
    load_occupying,
    reach_of,
    timing_for,
    type_settings,
)
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.notices import tell_patient
from telehealth.scheduling.roster import Offering, Roster, roster_for
from telehealth.scheduling.slots import clear_of_busy, open_slots, open_slots_sorted, soonest
from telehealth.scheduling.states import APPOINTMENT_TRANSITIONS, OCCUPYING, AppointmentStatus, AppointmentType
from telehealth.settings import Settings

HOLD_FOR = timedelta(minutes=15)
MAX_WINDOW = timedelta(days=31)


def care_team_reason(appointment: Appointment) -> str:
    """Why booking this appointment puts its clinician on the patient's care team (care_team_member.joined_because)."""
    return "integration_booked" if appointment.appointment_type == "integration" else "consult_booked"


def slots_from_calendar(
    calendar: ClinicianCalendar,
    *,
    appointment_type: AppointmentType,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    valid_through: date,
    ignore: uuid.UUID | None = None,
) -> list[datetime]:
    """One clinician's open starts in a window, none after their credentials lapse (pure)."""
    timing = timing_for(calendar.settings_row, appointment_type)
    zone = calendar.availability.zone
    busy: list[tuple[datetime, datetime]] = []
    per_day: dict[date, int] = {}
    for appointment in calendar.occupying:
        if appointment.id == ignore or (
            appointment.status == AppointmentStatus.HELD and appointment.hold_expires_at and appointment.hold_expires_at <= now
        ):
            continue  # the appointment being moved, or a lapsed hold
        busy.append((appointment.busy_from, appointment.busy_until))
        if timing.max_per_day is not None and appointment.appointment_type == appointment_type.value:
            local_day = appointment.starts_at.astimezone(zone).date()
            per_day[local_day] = per_day.get(local_day, 0) + 1
    return open_slots(
        calendar.availability,
        timing,
        busy,
        window_start=window_start,
        window_end=min(window_end, lapse_instant(valid_through, zone)),
        now=now,
        booked_per_day=per_day,
    )


async def clinician_slots(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    appointment_type: AppointmentType,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    valid_through: date,
    ignore: uuid.UUID | None = None,
) -> list[datetime]:
    """One clinician's open starts for a type in a window, none after their credentials lapse."""
    calendars = await load_calendars(
        session, clinician_ids=[clinician_id], appointment_type=appointment_type, window_start=window_start, window_end=window_end
    )
    return slots_from_calendar(
        calendars[clinician_id],
        appointment_type=appointment_type,
        window_start=window_start,
        window_end=window_end,
        now=now,
        valid_through=valid_through,
        ignore=ignore,
    )


class Slot(NamedTuple):
    """One open start of one clinician (a tuple: a search makes hundreds), in the order slots sort by."""

    starts_at: datetime
    clinician_name: str
    clinician_id: uuid.UUID


class Resident(Protocol):
    """All find_slots reads of a patient: the state they live in (a Patient, or the dashboard's probe for a state)."""

    @property
    def state_of_residence(self) -> str | None: ...


async def find_slots(
    session: AsyncSession,
    *,
    patient: Resident,
    appointment_type: AppointmentType,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    clinician_id: uuid.UUID | None = None,
    limit: int | None = None,
) -> list[Slot]:
    """Open starts from every clinician who may see this patient (or one of them), soonest first; with a
    `limit`, only the first that many: busy spans are read for as many days as should hold them, and
    again for more days only when too many were taken."""
    if window_end <= window_start or window_end - window_start > MAX_WINDOW:
        raise InvalidInput(
            "slots.window_invalid", "Ask for a window of up to 31 days.", fields={"to": "must be after from, within 31 days"}
        )
    if not patient.state_of_residence:
        raise RuleRefused("slots.no_state", "We need your state of residence before showing appointments.")
    roster = await roster_for(
        session,
        appointment_type=appointment_type,
        state=patient.state_of_residence,
        window_start=window_start,
        window_end=window_end,
        clinician_id=clinician_id,
    )
    found: list[Slot] = []
    unbooked = _Unbooked(now)
    chunk_start = window_start
    while roster.offerings and chunk_start < window_end and (limit is None or len(found) < limit):
        wanted = None if limit is None else limit - len(found)
        chunk_end = unbooked.enough_for(roster, wanted, chunk_start=chunk_start, window_end=window_end)
        spans = await load_busy_spans(
            session, clinician_ids=roster.ids, window_start=chunk_start, window_end=chunk_end, reach=roster.reach, now=now
        )
        counted = (
            await load_occupying(session, clinician_ids=roster.limited, window_start=chunk_start, window_end=chunk_end)
            if roster.limited
            else {}
        )
        streams = []
        for offering in roster.offerings:
            if offering.timing.max_per_day is None:
                starts = clear_of_busy(
                    unbooked.between(offering, chunk_start, chunk_end), offering.timing, *spans.get(offering.clinician_id, _NOTHING_BUSY)
                )
            else:
                starts = slots_from_calendar(
                    ClinicianCalendar(
                        offering.calendar.availability, offering.calendar.settings_row, counted.get(offering.clinician_id, [])
                    ),
                    appointment_type=appointment_type,
                    window_start=chunk_start,
                    window_end=chunk_end,
                    now=now,
                    valid_through=offering.valid_through,
                )
            if starts:
                streams.append((starts, offering.full_name, offering.clinician_id))
        found.extend(map(Slot._make, soonest(streams, wanted)))
        chunk_start = chunk_end
    return found


class _Unbooked:
    """Open starts as if nothing were booked, a day at a time from a search's start, computed once per group
    of offerings that share hours, zone, timing and lapse (roster.py)."""

    SPARE = 1.5  # read busy spans for half as many starts again as still wanted: some will be taken

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._days: dict[tuple[int, datetime, datetime], list[datetime]] = {}
        self._chunks: dict[tuple[int, datetime, datetime], list[datetime]] = {}

    def _day(self, offering: Offering, start: datetime, end: datetime) -> list[datetime]:
        key = (offering.group, start, end)
        if key not in self._days:
            until = min(end, offering.lapse)
            self._days[key] = (
                open_slots_sorted(
                    offering.calendar.availability, offering.timing, [], [], window_start=start, window_end=until, now=self.now
                )
                if start < until
                else []
            )
        return self._days[key]

    def _day_ends(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        days, day = [], start
        while day < end:
            days.append((day, min(end, day + timedelta(days=1))))
            day = days[-1][1]
        return days

    def enough_for(self, roster: Roster, wanted: int | None, *, chunk_start: datetime, window_end: datetime) -> datetime:
        """Where to stop reading busy spans: whole days from `chunk_start` until their unbooked starts number
        SPARE times `wanted` (the window's end when all are wanted): one read, not one per day."""
        if wanted is None:
            return window_end
        chunk_end, count = chunk_start, 0
        for day, day_end in self._day_ends(chunk_start, window_end):
            count += sum(len(self._day(first, day, day_end)) * members for first, members in roster.groups)
            chunk_end = day_end
            if count >= wanted * self.SPARE:
                break
        return chunk_end

    def between(self, offering: Offering, start: datetime, end: datetime) -> list[datetime]:
        """The offering's unbooked starts in [start, end): whole days from where enough_for began."""
        key = (offering.group, start, end)
        if key not in self._chunks:
            days = [self._day(offering, day, day_end) for day, day_end in self._day_ends(start, end)]
            self._chunks[key] = days[0] if len(days) == 1 else list(chain.from_iterable(days))
        return self._chunks[key]


_NOTHING_BUSY: tuple[list[datetime], list[datetime]] = ([], [])


def _around(starts_at: datetime) -> tuple[datetime, datetime]:
    """The window a booking checks and offers fresh slots from: the clinician's whole day around `starts_at`
    wherever they are (14 hours before to 14 after)."""
    window_start = starts_at - timedelta(hours=14)
    return window_start, window_start + timedelta(days=1, hours=4)


async def _clinician_around(
    session: AsyncSession, *, patient: Patient, clinician_id: uuid.UUID, appointment_type: AppointmentType, starts_at: datetime
) -> tuple[CredentialedRow | None, ClinicianCalendar | None]:
    """One clinician's credentials for this patient and calendar around `starts_at` (two statements), or
    (None, None) when they may not see the patient then."""
    if not patient.state_of_residence:
        raise RuleRefused("slots.no_state", "We need your state of residence before showing appointments.")
    window_start, window_end = _around(starts_at)
    loaded = await credentialed_calendars(
        session,
        appointment_type=appointment_type,
        state=patient.state_of_residence,
        window_start=window_start,
        window_end=window_end,
        clinician_id=clinician_id,
    )
    if not loaded:
        return None, None
    credentials, calendar = loaded[0]
    await _reload_occupying(session, calendar, clinician_id=clinician_id, appointment_type=appointment_type, starts_at=starts_at)
    return credentials, calendar


async def _reload_occupying(
    session: AsyncSession, calendar: ClinicianCalendar, *, clinician_id: uuid.UUID, appointment_type: AppointmentType, starts_at: datetime
) -> None:
    window_start, window_end = _around(starts_at)
    reach = reach_of([calendar], appointment_type)
    calendar.occupying = (
        await load_occupying(session, clinician_ids=[clinician_id], window_start=window_start, window_end=window_end, reach=reach)
    ).get(clinician_id, [])


def _offered_around(
    credentials: CredentialedRow | None,
    calendar: ClinicianCalendar | None,
    *,
    appointment_type: AppointmentType,
    starts_at: datetime,
    now: datetime,
) -> list[Slot]:
    if credentials is None or calendar is None:
        return []
    window_start, window_end = _around(starts_at)
    starts = slots_from_calendar(
        calendar,
        appointment_type=appointment_type,
        window_start=window_start,
        window_end=window_end,
        now=now,
        valid_through=credentials.valid_through,
    )
    return [Slot(start, credentials.full_name, credentials.id) for start in starts]


def _open_at(
    credentials: CredentialedRow, calendar: ClinicianCalendar, *, appointment_type: AppointmentType, starts_at: datetime, now: datetime
) -> bool:
    """Whether `starts_at` is one of the clinician's open starts: the slot rules over a minute's window (starts are
    aligned from the hours' start, not the window's, and the day's limit counts every occupying appointment loaded),
    instead of every start of their day; the day's are worked out only to offer others when it is not."""
    return starts_at in slots_from_calendar(
        calendar,
        appointment_type=appointment_type,
        window_start=starts_at,
        window_end=starts_at + timedelta(minutes=1),
        now=now,
        valid_through=credentials.valid_through,
    )


_APPOINTMENT = table_of(Appointment)  # Core statements on the table: no ORM bookkeeping for one row
# Every booking's two writes, on the driver (db/driver.py). The status is literal so that even the plan
# PostgreSQL keeps for the prepared statement can use the partial index ix_appointment_hold_expiry (WHERE
# status = 'held'); as a parameter, it planned the UPDATE afresh on every booking.
# Their busy span overlaps the new one's, [$4, $5).
_EXPIRE_LAPSED_HOLDS_IN_THE_WAY = f"""
UPDATE appointment SET status = '{AppointmentStatus.EXPIRED.value}'
WHERE status = 'held' AND hold_expires_at <= $1 AND (clinician_id = $2 OR patient_id = $3) AND busy_until > $4 AND busy_from < $5
"""
# Every column of the row, each value as its type sends it (a column whose type would need SQLAlchemy's own
# conversion fails here, at import, rather than ever being sent unconverted).
_INSERT_CONVERTS = tuple((column.key, driver.bind_converter(column)) for column in _APPOINTMENT.columns)
if not all(convert for _, convert in _INSERT_CONVERTS):
    raise RuntimeError("an appointment column the driver cannot send as it is: write it through SQLAlchemy")
_INSERT_UNLESS_TAKEN = (
    f"INSERT INTO appointment ({', '.join(column.name for column in _APPOINTMENT.columns)})"
    f" VALUES ({', '.join(f'${n}' for n in range(1, len(_APPOINTMENT.columns) + 1))}) ON CONFLICT DO NOTHING RETURNING id"
)
_PATIENT_BUSY = select(
    select(_APPOINTMENT.c.id)
    .where(
        _APPOINTMENT.c.patient_id == bindparam("patient_id"),
        _APPOINTMENT.c.status.in_([s.value for s in OCCUPYING]),
        _APPOINTMENT.c.starts_at < bindparam("span_end"),
        _APPOINTMENT.c.ends_at > bindparam("span_start"),
    )
    .exists()
)


async def take_slot(
    session: AsyncSession,
    *,
    patient: Patient,
    clinician_id: uuid.UUID,
    appointment_type: AppointmentType,
    starts_at: datetime,
    hold: bool,
    actor: Actor,
    now: datetime,
    settings: Settings,
    hold_for: timedelta = HOLD_FOR,
) -> Appointment:
    """Hold (15 min unless `hold_for` says otherwise) or book one slot. Losing a race to the same time answers 409 with fresh slots.

    The caller has passed the patient-side gates: only telehealth.booking.service calls this, after its may_book
    (no crisis waiting for contact, screening, the plan's reassessment, enrollment). Here only the slot is checked."""
    # The slot check needs only this clinician's day: their credentials, hours and busy spans around it.
    credentials, calendar = await _clinician_around(
        session, patient=patient, clinician_id=clinician_id, appointment_type=appointment_type, starts_at=starts_at
    )
    if (
        credentials is None
        or calendar is None
        or not _open_at(credentials, calendar, appointment_type=appointment_type, starts_at=starts_at, now=now)
    ):
        raise _slot_taken(_offered_around(credentials, calendar, appointment_type=appointment_type, starts_at=starts_at, now=now))
    timing = type_settings(calendar.settings_row, appointment_type)
    ends_at = starts_at + timing.duration
    busy_from, busy_until = starts_at - timing.buffer_before, ends_at + timing.buffer_after
    # Lapsed holds in the way give their time back now, not only when the sweep comes by.
    await driver.execute(
        session,
        _EXPIRE_LAPSED_HOLDS_IN_THE_WAY,
        driver.utc(now),
        clinician_id,
        patient.id,
        driver.utc(busy_from),
        driver.utc(busy_until),
    )
    appointment = driver.built(
        Appointment,
        {
            "appointment_type": appointment_type.value,
            "clinician_id": clinician_id,
            "patient_id": patient.id,
            "status": AppointmentStatus.HELD if hold else AppointmentStatus.BOOKED,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "busy_from": busy_from,
            "busy_until": busy_until,
            "hold_expires_at": now + hold_for if hold else None,
            "room_token": secrets.token_urlsafe(24),
            "created_at": now,
        },
    )
    if not await _insert_unless_taken(session, appointment):
        # Someone else's appointment took the time first (their transaction has ended: the INSERT waited for it).
        await _reload_occupying(session, calendar, clinician_id=clinician_id, appointment_type=appointment_type, starts_at=starts_at)
        fresh = _offered_around(credentials, calendar, appointment_type=appointment_type, starts_at=starts_at, now=now)
        if starts_at in {slot.starts_at for slot in fresh} and await _patient_busy(
            session, patient_id=patient.id, starts_at=starts_at, ends_at=ends_at
        ):
            raise Conflict("appointment.patient_overlap", "You already have an appointment at that time.")
        raise _slot_taken(fresh)
    await record_audit_event(
        session,
        actor=actor,
        action=f"appointment.{'hold' if hold else 'book'}",
        resource_type="appointment",
        resource_id=appointment.id,
        patient_id=patient.id,
        now=now,
    )
    if not hold:  # a hold joins the care team and is told about when it is confirmed (by payment, in billing)
        await care_teams.join(session, patient_id=patient.id, clinician_id=clinician_id, because=care_team_reason(appointment), now=now)
        await tell_patient(session, appointment, now=now, settings=settings)
    return appointment


async def _insert_unless_taken(session: AsyncSession, appointment: Appointment) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: the exclusion constraints decide, as for any write, but as a
    speculative insertion, which waits for a racing inserter's transaction to end instead of deadlocking
    with it (two plain INSERTs of overlapping rows can, and each deadlock costs PostgreSQL's
    deadlock_timeout, 1 s). A plain write racing it (a reschedule's UPDATE) can still deadlock with it, so
    it runs in write_or_find_conflict's savepoint and retry. Answers whether the row was stored; then
    `appointment` is in the session as that row."""
    values = [convert(getattr(appointment, key)) for key, convert in _INSERT_CONVERTS if convert]
    stored: list[uuid.UUID | None] = []

    async def insert() -> None:
        stored[:] = [await driver.fetchval(session, _INSERT_UNLESS_TAKEN, *values)]

    if await write_or_find_conflict(session, insert) is not None or not stored or stored[0] is None:
        return False
    driver.as_stored(session, appointment)  # the row as written: no SELECT to load it back
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
            async with driver.savepoint(session):
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
            .where(Appointment.status == AppointmentStatus.HELD, col(Appointment.hold_expires_at) <= now)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for appointment_id, patient_id in due:
        await change_status(
            session,
            Appointment,
            appointment_id,
            table=APPOINTMENT_TRANSITIONS,
            source=AppointmentStatus.HELD,
            target=AppointmentStatus.EXPIRED,
            actor=Actor.system(),
            now=now,
            patient_id=patient_id,
        )
    return len(due)


async def patient_appointment(session: AsyncSession, *, patient: Patient, appointment_id: uuid.UUID) -> Appointment:
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.patient_id != patient.id:
        raise NotFound("appointment.not_found", "No appointment with this id is yours.")
    return appointment


async def patient_appointments(session: AsyncSession, *, patient: Patient, since: datetime) -> list[Appointment]:
    rows = await session.execute(
        select(Appointment).where(Appointment.patient_id == patient.id, Appointment.ends_at >= since).order_by(col(Appointment.starts_at))
    )
    return list(rows.scalars())


async def clinician_calendar(
    session: AsyncSession, *, clinician_id: uuid.UUID, start: datetime, end: datetime
) -> list[tuple[Appointment, str]]:
    """A clinician's held and booked appointments in a window, with each patient's name."""
    rows = await session.execute(
        select(Appointment, UserAccount.full_name)
        .join(Patient, col(Patient.id) == Appointment.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(
            Appointment.clinician_id == clinician_id,
            col(Appointment.status).in_([s.value for s in OCCUPYING]),
            Appointment.starts_at < end,
            Appointment.ends_at > start,
        )
        .order_by(col(Appointment.starts_at))
    )
    return [(appointment, name) for appointment, name in rows.all()]
