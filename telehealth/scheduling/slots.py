"""Slot computation: pure functions from a clinician's weekly hours, date overrides, appointment-type
settings and busy times to the open start times in a window.

Hours are wall-clock times in the clinician's own zone, turned into instants one local date at a time,
so 09:00 stays 09:00 local across daylight-saving changes. A local time that does not exist (the spring
gap) is skipped; an ambiguous one (the autumn repeat) takes its first occurrence.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import chain, repeat
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

MICROSECOND = timedelta(microseconds=1)
MINUTE = timedelta(minutes=1)
Who = TypeVar("Who")  # what tells clinicians apart after their name (an id)


@dataclass(frozen=True)
class TimeRange:
    """Local wall-clock hours, start inclusive, end exclusive (end may be 24:00 written as time.max)."""

    start: time
    end: time


@dataclass(frozen=True)
class TypeSettings:
    duration: timedelta
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    minimum_notice: timedelta = timedelta(hours=12)
    horizon: timedelta = timedelta(days=30)
    max_per_day: int | None = None
    step: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Availability:
    zone: ZoneInfo
    weekly: dict[int, tuple[TimeRange, ...]]  # weekday (Monday 0) -> ranges
    days_off: frozenset[date] = frozenset()
    extra: dict[date, tuple[TimeRange, ...]] | None = None  # additional hours on a date


class Busy(NamedTuple):
    """An existing appointment: its own span, and how much it blocks around itself (its buffers).
    (A tuple: a search builds thousands of them.)"""

    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@lru_cache(maxsize=4096)  # clinicians share zones and hours: the same few instants every search
def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """The instant of a local wall-clock time, or None when that time does not exist that day."""
    local = datetime.combine(day, at, tzinfo=zone)  # fold=0: the first of a repeated hour
    round_trip = local.astimezone(UTC).astimezone(zone)
    if (round_trip.hour, round_trip.minute) != (at.hour, at.minute):
        return None  # inside the spring-forward gap
    return local.astimezone(UTC)


@lru_cache(maxsize=1024)
def _day_end(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def _ranges_on(day: date, availability: Availability) -> tuple[TimeRange, ...]:
    if day in availability.days_off:
        return ()
    weekly = availability.weekly.get(day.weekday(), ())
    return (*weekly, *((availability.extra or {}).get(day, ())))


def _merged(spans: Iterable[tuple[datetime, datetime]]) -> tuple[list[datetime], list[datetime]]:
    """Busy spans sorted by start as disjoint sorted spans (starts, ends): overlapping or touching spans
    become one. A candidate overlaps the union exactly when it overlaps one of the spans, and the ends come
    out sorted."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for start, end in spans:
        if ends and start <= ends[-1]:
            if end > ends[-1]:
                ends[-1] = end
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _open_in_range(
    opens: datetime,
    closes: datetime,
    settings: TypeSettings,
    earliest: datetime,
    latest: datetime,
    busy_starts: list[datetime],
    busy_ends: list[datetime],
    found: list[datetime],
) -> None:
    """Append the open starts of one range of hours: every `step` from `opens`, the whole consult before
    `closes`, in [earliest, latest), its span with both buffers clear of the busy spans. The candidates
    ascend, so one pointer walks the busy spans, and a blocked candidate jumps past the span blocking it."""
    step, duration, before, after = settings.step, settings.duration, settings.buffer_before, settings.buffer_after
    start = opens
    if start < earliest:
        start += step * -((opens - earliest) // step)  # the first aligned start at or after `earliest`
    last = min(closes - duration, latest - MICROSECOND)
    i = bisect_right(busy_ends, start - before)  # the first span ending after the first candidate's span begins
    count = len(busy_ends)
    while start <= last:
        blocked_from = start - before
        while i < count and busy_ends[i] <= blocked_from:
            i += 1
        if i < count and busy_starts[i] < start + duration + after:
            # Blocked by span i: the next candidate that can be clear starts its before-buffer at that span's end.
            start += step * -((blocked_from - busy_ends[i]) // step)
            continue
        found.append(start)
        start += step


def open_slots(
    availability: Availability,
    settings: TypeSettings,
    busy: Iterable[Busy | tuple[datetime, datetime]],
    *,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    booked_per_day: dict[date, int] | None = None,
) -> list[datetime]:
    """Open start times (UTC, sorted) in [window_start, window_end): within hours, clear of busy times with
    both buffers, after the minimum notice, before the horizon, under the daily limit."""
    return _open_slots(
        availability,
        settings,
        lambda: _merged(sorted(busy)),
        window_start=window_start,
        window_end=window_end,
        now=now,
        booked_per_day=booked_per_day,
    )


def open_slots_sorted(
    availability: Availability,
    settings: TypeSettings,
    busy_starts: list[datetime],
    busy_ends: list[datetime],
    *,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[datetime]:
    """open_slots for busy spans given as two lists sorted by start (as the database aggregates them), with
    no daily limit to count."""
    return _open_slots(
        availability,
        settings,
        lambda: _merged(zip(busy_starts, busy_ends, strict=True)),
        window_start=window_start,
        window_end=window_end,
        now=now,
        booked_per_day=None,
    )


def clear_of_busy(
    candidates: list[datetime], settings: TypeSettings, busy_starts: list[datetime], busy_ends: list[datetime]
) -> list[datetime]:
    """The sorted `candidates` (open starts of a calendar with nothing booked) whose span, with both
    buffers, is clear of the busy spans (sorted by start, overlapping or not). Clinicians who share hours,
    zone and settings share their candidates, so a search computes them once per group and each
    clinician only cuts out what is busy: a few bisections per appointment instead of a walk over every
    candidate. Same answer as open_slots_sorted with the spans."""
    if not busy_starts:
        return candidates
    reaches_back = settings.duration + settings.buffer_after  # a start this close before a span overlaps it
    clear: list[datetime] = []
    kept_from = 0
    for start, end in zip(busy_starts, busy_ends, strict=True):
        first_blocked = bisect_right(candidates, start - reaches_back, kept_from)
        clear.extend(candidates[kept_from:first_blocked])
        kept_from = max(kept_from, bisect_left(candidates, end + settings.buffer_before, first_blocked))
    clear.extend(candidates[kept_from:])
    return clear


def _open_slots(
    availability: Availability,
    settings: TypeSettings,
    merged_busy: Callable[[], tuple[list[datetime], list[datetime]]],
    *,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    booked_per_day: dict[date, int] | None,
) -> list[datetime]:
    zone = availability.zone
    earliest = max(window_start, now + settings.minimum_notice)
    latest = min(window_end, now + settings.horizon)
    if earliest >= latest:
        return []
    busy_starts, busy_ends = merged_busy()
    booked_per_day = booked_per_day or {}
    found: list[datetime] = []
    overlapping_ranges = False  # several ranges on one day may overlap: then sort and drop repeats at the end
    day, last_day = earliest.astimezone(zone).date(), latest.astimezone(zone).date()
    one_day = timedelta(days=1)
    while day <= last_day:
        if settings.max_per_day is not None and booked_per_day.get(day, 0) >= settings.max_per_day:
            day += one_day
            continue
        ranges = _ranges_on(day, availability)
        if len(ranges) > 1:
            overlapping_ranges = True
        for hours in ranges:
            opens = _local_instant(day, hours.start, zone)
            closes = _day_end(day, zone) if hours.end == time.max else _local_instant(day, hours.end, zone)
            if opens is not None and closes is not None:
                _open_in_range(opens, closes, settings, earliest, latest, busy_starts, busy_ends, found)
        day += one_day
    return sorted(set(found)) if overlapping_ranges else found


def soonest(streams: list[tuple[list[datetime], str, Who]], wanted: int | None) -> list[tuple[datetime, str, Who]]:
    """The `wanted` soonest (start, name, who) of the clinicians' sorted starts, ties by name, or all of them:
    what merging the sorted lists answers. A bisection over the minutes between the first and the last start
    finds a cutoff by which that many have come (counting with bisect in each list), so only the starts up to
    it become tuples to sort: a few hundred of a state's thousands."""
    if wanted is not None and sum(map(len, (starts for starts, _, _ in streams))) > wanted:
        lists = [starts for starts, _, _ in streams if starts]
        first = min(starts[0] for starts in lists)
        low, high = 0, int((max(starts[-1] for starts in lists) - first) // MINUTE) + 1  # `high` minutes in, every start has come
        while low < high:
            middle = (low + high) // 2
            if sum(map(bisect_right, lists, repeat(first + middle * MINUTE))) >= wanted:
                high = middle
            else:
                low = middle + 1
        cutoff = first + low * MINUTE
        streams = [(starts[: bisect_right(starts, cutoff)], name, who) for starts, name, who in streams]
    ordered = sorted(chain.from_iterable(zip(starts, repeat(name), repeat(who)) for starts, name, who in streams))
    return ordered[:wanted]
