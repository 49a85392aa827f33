"""The roster a slot search starts from: every clinician who may see a patient of a state for a type in a
window, with their hours, overrides, settings and the instant their credentials lapse. It changes only when
someone edits hours, overrides, settings, licences, DEA registrations, a clinician's zone or account, so each
app process keeps the rosters it has loaded and reloads one only when the database says those tables changed.

How it knows: migration 0017 keeps one row, calendar_version (token, n), and statement triggers on those
tables add 1 to n in the writing transaction. A search reads (token, n) first and then, on a miss, the
roster, each statement with its own snapshot (READ COMMITTED). A change committed between the two reads is
then in a roster filed under the older n, which the next search finds out of date and reloads; a roster
can never be filed under an n newer than its data. The token, new in every database made by the
migration, keeps two databases (tests, a restore) from sharing an entry by chance; MAX_AGE bounds what a
change made with triggers disabled could leave behind.

Busy spans are never kept: every search reads them fresh, and a booking checks its clinician's day
itself, from the tables, whatever a search showed.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.db import driver
from telehealth.scheduling.calendars import ClinicianCalendar, CredentialedRow, credentialed_calendars, lapse_instant, reach_of, timing_for
from telehealth.scheduling.slots import TypeSettings
from telehealth.scheduling.states import AppointmentType

MAX_AGE_SECONDS = 300.0
MAX_ENTRIES = 256
_CALENDAR_VERSION = "SELECT token, n FROM calendar_version"  # on the driver (db/driver.py): every search reads it


@dataclass(frozen=True, slots=True)
class Offering:
    """One clinician's part in a search (their calendar's `occupying` stays empty: busy spans come fresh)."""

    clinician_id: uuid.UUID
    full_name: str
    valid_through: date
    calendar: ClinicianCalendar
    timing: TypeSettings
    lapse: datetime  # nothing starts at or after it: midnight (theirs) after the last valid day
    group: int  # offerings with the same hours, zone, timing and lapse share one group: the same unbooked starts


@dataclass(frozen=True, slots=True)
class Roster:
    offerings: tuple[Offering, ...]  # in the order the database gave them (the tie-break after start and name)
    ids: list[uuid.UUID]
    limited: list[uuid.UUID]  # clinicians with a daily limit: their appointments are counted, not only spanned
    reach: timedelta  # how far outside a window a busy span of the others can still block a start inside it
    groups: tuple[tuple[Offering, int], ...]  # per group: its first offering and how many it has


RosterKey = tuple[str, AppointmentType, uuid.UUID | None, date, date]


class RosterCache:
    """The rosters this process has loaded, each with the calendar version it was read at (least recently
    used dropped beyond MAX_ENTRIES)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[RosterKey, tuple[tuple[object, int], float, Roster]] = OrderedDict()

    def get(self, key: RosterKey, version: tuple[object, int]) -> Roster | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or time.monotonic() - entry[1] > MAX_AGE_SECONDS:
            return None
        self._entries.move_to_end(key)
        return entry[2]

    def put(self, key: RosterKey, version: tuple[object, int], roster: Roster) -> None:
        self._entries[key] = (version, time.monotonic(), roster)
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every roster (benchmarks that time a search from cold)."""
        self._entries.clear()


ROSTERS = RosterCache()


async def roster_for(
    session: AsyncSession,
    *,
    appointment_type: AppointmentType,
    state: str,
    window_start: datetime,
    window_end: datetime,
    clinician_id: uuid.UUID | None = None,
) -> Roster:
    """Who may see a patient of `state` for this type in the window (or that one clinician), with their
    calendars: from this process's rosters while the calendar version is unchanged, else one statement."""
    row = await driver.fetchrow(session, _CALENDAR_VERSION)  # before the roster: see the module's note
    version = (row["token"], row["n"]) if row is not None else None  # no row (an operator deleted it): nothing is kept
    # The roster's statement depends on the window through its first and last dates only.
    key: RosterKey = (state, appointment_type, clinician_id, window_start.date(), window_end.date())
    roster = ROSTERS.get(key, version) if version is not None else None
    if roster is None:
        roster = _roster_from(
            await credentialed_calendars(
                session,
                appointment_type=appointment_type,
                state=state,
                window_start=window_start,
                window_end=window_end,
                clinician_id=clinician_id,
            ),
            appointment_type,
        )
        if version is not None:
            ROSTERS.put(key, version, roster)
    return roster


def _roster_from(loaded: list[tuple[CredentialedRow, ClinicianCalendar]], appointment_type: AppointmentType) -> Roster:
    offerings: list[Offering] = []
    groups: dict[tuple[int, int, datetime], int] = {}  # (Availability, TypeSettings, lapse) -> group; calendars.py shares those objects
    members: list[int] = []
    for row, calendar in loaded:
        timing = timing_for(calendar.settings_row, appointment_type)
        lapse = lapse_instant(row.valid_through, calendar.availability.zone)
        group = groups.setdefault((id(calendar.availability), id(timing), lapse), len(groups))
        if group == len(members):
            members.append(0)
        members[group] += 1
        offerings.append(Offering(row.id, row.full_name, row.valid_through, calendar, timing, lapse, group))
    firsts = {offering.group: offering for offering in reversed(offerings)}
    unlimited = [o.calendar for o in offerings if o.timing.max_per_day is None]
    return Roster(
        offerings=tuple(offerings),
        ids=[o.clinician_id for o in offerings],
        limited=[o.clinician_id for o in offerings if o.timing.max_per_day is not None],
        reach=reach_of(unlimited, appointment_type),
        groups=tuple((firsts[group], count) for group, count in enumerate(members)),
    )
