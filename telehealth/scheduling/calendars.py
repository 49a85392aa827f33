"""Clinicians' calendars as the slot engine reads them: who may see a patient of a state for a type (licence,
and for prescribers a Schedule III DEA registration, on the date), their hours, date overrides and type
settings, and the busy spans of their held and booked appointments. Every statement here is built once with
bound parameters (see the note above _any_id); the search's roster of credentialed calendars is also kept per
process between searches (roster.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnClause,
    DateTime,
    FromClause,
    Row,
    Uuid,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType
from sqlmodel import col

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.clinicians.models import ClinicianProfile, DeaRegistration, StateLicense
from telehealth.clinicians.service import holds_schedule_iii
from telehealth.db import driver
from telehealth.scheduling.models import MAX_BUSY_SPAN, OCCUPYING_SQL, Appointment, AppointmentTypeSettings, DateOverride, WeeklyHours
from telehealth.scheduling.slots import Availability, TimeRange, TypeSettings
from telehealth.scheduling.states import AppointmentStatus, AppointmentType

DEFAULT_DURATIONS = {AppointmentType.CONSULT: 45, AppointmentType.REASSESSMENT: 30, AppointmentType.INTEGRATION: 50}
CLINICIAN_ROLE = {
    AppointmentType.CONSULT: Role.PRESCRIBER,
    AppointmentType.REASSESSMENT: Role.PRESCRIBER,
    AppointmentType.INTEGRATION: Role.THERAPIST,
}


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


@cache
def _credentialed_statement(*, prescriber: bool, one_clinician: bool) -> Any:
    if not prescriber:  # therapists: the state's licences, the latest per clinician
        license = select(col(StateLicense.clinician_id), func.max(StateLicense.expires_on).label("until")).where(
            col(StateLicense.state) == bindparam("state"), StateLicense.expires_on >= bindparam("on_or_after")
        )
        if one_clinician:
            license = license.where(col(StateLicense.clinician_id) == bindparam("clinician_id"))
        licensed: FromClause = license.group_by(col(StateLicense.clinician_id)).subquery("licensed")
        query = select(col(UserAccount.id)).join(licensed, licensed.c.clinician_id == UserAccount.id)
        valid_through: Any = licensed.c.until
    else:
        # Prescribers start from their Schedule III DEA registration in the state (one per clinician and state,
        # uq_dea_registration_clinician_id_state), and each one's latest licence there is one index probe
        # (LATERAL). Joined to a GROUP BY of the licences instead, the generic plan PostgreSQL switches a
        # prepared statement to (it guesses the LIKE keeps 3 rows) compared every registration with every
        # licence: 35 s a search for 20,000 prescribers (docs/benchmarks.md, "Growth at 10x and 100x").
        licensed = (
            select(func.max(StateLicense.expires_on).label("until"))
            .where(
                col(StateLicense.clinician_id) == DeaRegistration.clinician_id,
                col(StateLicense.state) == bindparam("state"),
                StateLicense.expires_on >= bindparam("on_or_after"),
            )
            .lateral("licensed")
        )
        query = (
            select(col(UserAccount.id))
            .select_from(DeaRegistration)
            .join(UserAccount, col(UserAccount.id) == DeaRegistration.clinician_id)
            .join(licensed, true())
            .where(
                col(DeaRegistration.state) == bindparam("state"),
                DeaRegistration.expires_on >= bindparam("on_or_after"),
                holds_schedule_iii(col(DeaRegistration.schedules)),
                licensed.c.until.is_not(None),
            )
        )
        if one_clinician:
            query = query.where(col(DeaRegistration.clinician_id) == bindparam("clinician_id"))
        valid_through = func.least(licensed.c.until, DeaRegistration.expires_on)
    return (
        query.add_columns(valid_through.label("valid_through"), col(UserAccount.full_name), col(ClinicianProfile.timezone))
        .outerjoin(ClinicianProfile, col(ClinicianProfile.user_id) == UserAccount.id)
        .where(col(UserAccount.role) == bindparam("role"), col(UserAccount.is_active).is_(True))
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
    occupying: list[OccupyingRow]


_SETTINGS_COLUMNS = (
    "duration_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "minimum_notice_minutes",
    "horizon_days",
    "max_per_day",
    "step_minutes",
)


def _with_calendar(query: Any) -> Any:
    """A select from user_account with each clinician's calendar but its busy times added: the week as one
    text ("0 09:00:00 17:00:00,1 ..."), the window's date overrides as one text ("2027-01-12 off,2027-01-13
    extra 14:00:00 15:00:00") and the type's settings; one row per clinician, whatever their hours."""
    week = (
        select(
            func.string_agg(
                func.concat_ws(" ", WeeklyHours.weekday, WeeklyHours.starts_at_local, WeeklyHours.ends_at_local),
                aggregate_order_by(literal_column("','"), col(WeeklyHours.weekday), col(WeeklyHours.starts_at_local)),
            )
        )
        .where(col(WeeklyHours.clinician_id) == UserAccount.id)
        .scalar_subquery()
    )
    overrides = (
        select(
            func.string_agg(
                func.concat_ws(" ", DateOverride.on_date, DateOverride.kind, DateOverride.starts_at_local, DateOverride.ends_at_local),
                aggregate_order_by(literal_column("','"), col(DateOverride.on_date), col(DateOverride.starts_at_local)),
            )
        )
        .where(
            col(DateOverride.clinician_id) == UserAccount.id,
            DateOverride.on_date >= bindparam("first_day"),
            DateOverride.on_date <= bindparam("last_day"),
        )
        .scalar_subquery()
    )
    settings = [getattr(AppointmentTypeSettings, name) for name in _SETTINGS_COLUMNS]
    return query.add_columns(week.label("week"), overrides.label("overrides"), *settings).outerjoin(
        AppointmentTypeSettings,
        (AppointmentTypeSettings.clinician_id == UserAccount.id)
        & (AppointmentTypeSettings.appointment_type == bindparam("appointment_type")),
    )


class CredentialedRow(NamedTuple):
    """A clinician who may see the patient, with their calendar's texts and type settings: the columns of
    _calendars_statement, in its order (checked when the statement is compiled)."""

    id: uuid.UUID
    valid_through: date
    full_name: str
    timezone: str | None
    week: str | None
    overrides: str | None
    duration_minutes: int | None
    buffer_before_minutes: int | None
    buffer_after_minutes: int | None
    minimum_notice_minutes: int | None
    horizon_days: int | None
    max_per_day: int | None
    step_minutes: int | None


@cache
def _calendars_statement(*, prescriber: bool, one_clinician: bool) -> Any:
    return _with_calendar(_credentialed_statement(prescriber=prescriber, one_clinician=one_clinician))


@cache
def _calendars_on_the_driver(*, prescriber: bool, one_clinician: bool) -> driver.CompiledStatement:
    """The statement compiled once for the driver (db/driver.py): every booking's slot check runs it."""
    statement = _calendars_statement(prescriber=prescriber, one_clinician=one_clinician)
    return driver.compiled(statement, columns=CredentialedRow._fields)


_CALENDARS_BY_ID = _with_calendar(
    select(col(UserAccount.id), col(ClinicianProfile.timezone))
    .outerjoin(ClinicianProfile, col(ClinicianProfile.user_id) == UserAccount.id)
    .where(_any_id(UserAccount.id))
)


def _calendar_parameters(appointment_type: AppointmentType, window_start: datetime, window_end: datetime) -> dict[str, Any]:
    return {
        "appointment_type": appointment_type.value,
        "first_day": (window_start - timedelta(days=1)).date(),
        "last_day": (window_end + timedelta(days=1)).date(),
    }


def _calendar_from(row: CredentialedRow | Row[Any], appointment_type: AppointmentType) -> ClinicianCalendar:
    settings_row = None
    if row.duration_minutes is not None:  # the clinician has their own settings for this type
        values = {name: getattr(row, name) for name in _SETTINGS_COLUMNS}
        settings_row = AppointmentTypeSettings(clinician_id=row.id, appointment_type=appointment_type.value, **values)
    return ClinicianCalendar(availability=_availability(row.timezone, row.week, row.overrides), settings_row=settings_row, occupying=[])


async def credentialed_calendars(
    session: AsyncSession,
    *,
    appointment_type: AppointmentType,
    state: str,
    window_start: datetime,
    window_end: datetime,
    clinician_id: uuid.UUID | None = None,
) -> list[tuple[CredentialedRow, ClinicianCalendar]]:
    """Every clinician who may see a patient of `state` for this type from the window's first day (or that
    one clinician), with their calendar (nothing occupying yet): one statement."""
    role = CLINICIAN_ROLE[appointment_type]
    statement = _calendars_on_the_driver(prescriber=role is Role.PRESCRIBER, one_clinician=clinician_id is not None)
    parameters = {"state": state, "on_or_after": window_start.date(), "role": role.value} | _calendar_parameters(
        appointment_type, window_start, window_end
    )
    if clinician_id is not None:
        parameters["clinician_id"] = clinician_id
    rows = [CredentialedRow(*record) for record in await driver.fetch(session, statement.sql, *statement.args(**parameters))]
    return [(row, _calendar_from(row, appointment_type)) for row in rows]


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


def reach_of(calendars: list[ClinicianCalendar], appointment_type: AppointmentType) -> timedelta:
    """How far outside a window an appointment can still matter to a start inside it: its span with both
    buffers; a whole day when a daily limit counts the appointments of the window's local days."""
    timings = [timing_for(calendar.settings_row, appointment_type) for calendar in calendars]
    if any(timing.max_per_day is not None for timing in timings):
        return timedelta(days=1)
    return max((timing.buffer_before + timing.duration + timing.buffer_after for timing in timings), default=timedelta(0))


_UTC = DateTime(timezone=True)
_HALF_OPEN: ColumnClause[str] = literal_column("'[)'")  # literal, so even a generic plan matches the index expression


def _occupying_within(*, one_clinician: bool = False) -> list[Any]:
    """Held or booked appointments of the clinicians (`ids`, or the one `clinician_id`) whose busy span overlaps
    [after, before): written as the exclusion constraint's own index expression, with the statuses literal as in
    its WHERE, so PostgreSQL can use ex_appointment_clinician_busy (only occupying rows, never the growing
    history). One clinician's is a statement of its own: against `= ANY($1)`, which it must assume holds
    several ids, PostgreSQL planned a booking's check afresh on every execution (pg_prepared_statements:
    custom_plans only) instead of keeping one plan."""
    clinician = Appointment.clinician_id == bindparam("clinician_id") if one_clinician else _any_id(Appointment.clinician_id)
    return [
        clinician,
        text(f"appointment.{OCCUPYING_SQL}"),
        func.tstzrange(Appointment.busy_from, Appointment.busy_until, _HALF_OPEN).op("&&")(
            func.tstzrange(bindparam("after", type_=_UTC), bindparam("before", type_=_UTC), _HALF_OPEN)
        ),
    ]


_OCCUPYING_COLUMNS = (
    col(Appointment.id),
    col(Appointment.clinician_id),
    col(Appointment.appointment_type),
    col(Appointment.status),
    _plain(Appointment.starts_at),
    _plain(Appointment.busy_from),
    _plain(Appointment.busy_until),
    _plain(Appointment.hold_expires_at),
)


class OccupyingRow(NamedTuple):
    """A held or booked appointment as the slot engine reads it (_OCCUPYING_COLUMNS, in order)."""

    id: uuid.UUID
    clinician_id: uuid.UUID
    appointment_type: str
    status: str
    starts_at: datetime
    busy_from: datetime
    busy_until: datetime
    hold_expires_at: datetime | None


# On the driver (db/driver.py), compiled once: every booking reads one clinician's, every search the limited ones'.
_OCCUPYING_SPANS = driver.compiled(select(*_OCCUPYING_COLUMNS).where(*_occupying_within()), columns=OccupyingRow._fields)
_OCCUPYING_SPANS_OF_ONE = driver.compiled(
    select(*_OCCUPYING_COLUMNS).where(*_occupying_within(one_clinician=True)), columns=OccupyingRow._fields
)


_BUSY_SPANS = (
    select(
        col(Appointment.clinician_id),
        # Read as asyncpg decodes them (lists of UTC datetimes), without a per-item hook.
        type_coerce(func.array_agg(aggregate_order_by(col(Appointment.busy_from), col(Appointment.busy_from))), NullType()),
        type_coerce(func.array_agg(aggregate_order_by(col(Appointment.busy_until), col(Appointment.busy_from))), NullType()),
    )
    .where(
        # Overlapping [after, before), found by the start alone (no span lasts over MAX_BUSY_SPAN, a check
        # constraint), so the btree ix_appointment_occupying_busy_from serves it, statuses literal as its WHERE.
        _any_id(Appointment.clinician_id),
        text(f"appointment.{OCCUPYING_SQL}"),
        Appointment.busy_from < bindparam("before", type_=_UTC),
        Appointment.busy_from > bindparam("earliest_start", type_=_UTC),
        Appointment.busy_until > bindparam("after", type_=_UTC),
        (col(Appointment.status) == AppointmentStatus.BOOKED.value)
        | (col(Appointment.hold_expires_at) > bindparam("now", type_=_UTC)),  # not a lapsed hold
    )
    .group_by(col(Appointment.clinician_id))
)
_BUSY_SPANS_ON_THE_DRIVER = driver.compiled(_BUSY_SPANS)  # every slot search's one read of busy times


async def load_busy_spans(
    session: AsyncSession, *, clinician_ids: list[uuid.UUID], window_start: datetime, window_end: datetime, reach: timedelta, now: datetime
) -> dict[uuid.UUID, tuple[list[datetime], list[datetime]]]:
    """The busy spans (starts, ends, sorted by start) of held and booked appointments reaching into the
    window, lapsed holds left out, aggregated per clinician by the database: what the slot engine needs when
    no daily limit counts appointments, in one row per clinician."""
    after = driver.utc(window_start - reach)
    records = await driver.fetch(
        session,
        _BUSY_SPANS_ON_THE_DRIVER.sql,
        *_BUSY_SPANS_ON_THE_DRIVER.args(
            ids=clinician_ids, after=after, earliest_start=after - MAX_BUSY_SPAN, before=driver.utc(window_end + reach), now=driver.utc(now)
        ),
    )
    return {cid: (starts, ends) for cid, starts, ends in records}


async def load_occupying(
    session: AsyncSession,
    *,
    clinician_ids: list[uuid.UUID],
    window_start: datetime,
    window_end: datetime,
    reach: timedelta = timedelta(days=1),
) -> dict[uuid.UUID, list[OccupyingRow]]:
    """The held and booked appointments of these clinicians that reach into the window (by `reach`; a day
    unless the caller knows better), as plain rows: thousands load several times faster than ORM objects."""
    bounds = {"after": driver.utc(window_start - reach), "before": driver.utc(window_end + reach)}
    if len(clinician_ids) == 1:
        records = await driver.fetch(
            session, _OCCUPYING_SPANS_OF_ONE.sql, *_OCCUPYING_SPANS_OF_ONE.args(clinician_id=clinician_ids[0], **bounds)
        )
    else:
        records = await driver.fetch(session, _OCCUPYING_SPANS.sql, *_OCCUPYING_SPANS.args(ids=clinician_ids, **bounds))
    occupying: dict[uuid.UUID, list[OccupyingRow]] = {}
    for record in records:
        appointment = OccupyingRow(*record)
        occupying.setdefault(appointment.clinician_id, []).append(appointment)
    return occupying


async def load_calendars(
    session: AsyncSession,
    *,
    clinician_ids: list[uuid.UUID],
    appointment_type: AppointmentType,
    window_start: datetime,
    window_end: datetime,
) -> dict[uuid.UUID, ClinicianCalendar]:
    """Hours, overrides, settings and occupying appointments of every clinician asked for: two statements in
    all, not five per clinician."""
    if not clinician_ids:
        return {}
    parameters = {"ids": clinician_ids} | _calendar_parameters(appointment_type, window_start, window_end)
    calendars = {row.id: _calendar_from(row, appointment_type) for row in (await session.execute(_CALENDARS_BY_ID, parameters)).all()}
    for cid in clinician_ids:  # no account row: no hours
        calendars.setdefault(cid, ClinicianCalendar(availability=_availability(None, None, None), settings_row=None, occupying=[]))
    occupying = await load_occupying(
        session,
        clinician_ids=clinician_ids,
        window_start=window_start,
        window_end=window_end,
        reach=reach_of(list(calendars.values()), appointment_type),
    )
    for cid, calendar in calendars.items():
        calendar.occupying = occupying.get(cid, [])
    return calendars


@lru_cache(maxsize=1024)
def lapse_instant(valid_through: date, zone: ZoneInfo) -> datetime:
    """Nothing after the credentials lapse: midnight (the clinician's) after the last valid day."""
    return datetime.combine(valid_through + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


_DEFAULT_TIMINGS = {kind: type_settings(None, kind) for kind in AppointmentType}


def timing_for(settings_row: AppointmentTypeSettings | None, appointment_type: AppointmentType) -> TypeSettings:
    return _DEFAULT_TIMINGS[appointment_type] if settings_row is None else type_settings(settings_row, appointment_type)
