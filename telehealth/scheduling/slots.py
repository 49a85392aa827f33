"""Slot computation: pure functions from a clinician's weekly hours, date overrides, appointment-type
settings and busy times to the open start times in a window.

Hours are wall-clock times in the clinician's own zone, turned into instants one local date at a time,
so 09:00 stays 09:00 local across daylight-saving changes. A local time that does not exist (the spring
gap) is skipped; an ambiguous one (the autumn repeat) takes its first occurrence.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


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


@dataclass(frozen=True)
class Busy:
    """An existing appointment: its own span, and how much it blocks around itself (its buffers)."""

    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """The instant of a local wall-clock time, or None when that time does not exist that day."""
    local = datetime.combine(day, at, tzinfo=zone)  # fold=0: the first of a repeated hour
    round_trip = local.astimezone(UTC).astimezone(zone)
    if (round_trip.hour, round_trip.minute) != (at.hour, at.minute):
        return None  # inside the spring-forward gap
    return local.astimezone(UTC)


def _day_end(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def _ranges_on(day: date, availability: Availability) -> tuple[TimeRange, ...]:
    if day in availability.days_off:
        return ()
    weekly = availability.weekly.get(day.weekday(), ())
    return (*weekly, *((availability.extra or {}).get(day, ())))


def _candidate_starts(day: date, ranges: Iterable[TimeRange], settings: TypeSettings, zone: ZoneInfo) -> Iterator[datetime]:
    for hours in ranges:
        opens = _local_instant(day, hours.start, zone)
        closes = _day_end(day, zone) if hours.end == time.max else _local_instant(day, hours.end, zone)
        if opens is None or closes is None:
            continue
        start = opens
        while start + settings.duration <= closes:
            yield start
            start += settings.step


def open_slots(
    availability: Availability,
    settings: TypeSettings,
    busy: Iterable[Busy],
    *,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    booked_per_day: dict[date, int] | None = None,
) -> list[datetime]:
    """Open start times (UTC, sorted) in [window_start, window_end): within hours, clear of busy times with
    both buffers, after the minimum notice, before the horizon, under the daily limit."""
    zone = availability.zone
    earliest = max(window_start, now + settings.minimum_notice)
    latest = min(window_end, now + settings.horizon)
    busy = sorted(busy, key=lambda b: b.start)
    busy_starts = [b.start for b in busy]
    longest = max((b.end - b.start for b in busy), default=timedelta(0))
    booked_per_day = booked_per_day or {}
    slots: set[datetime] = set()
    day = earliest.astimezone(zone).date()
    while day <= latest.astimezone(zone).date():
        if settings.max_per_day is not None and booked_per_day.get(day, 0) >= settings.max_per_day:
            day += timedelta(days=1)
            continue
        for start in _candidate_starts(day, _ranges_on(day, availability), settings, zone):
            if not earliest <= start < latest:
                continue
            blocked_from, blocked_to = start - settings.buffer_before, start + settings.duration + settings.buffer_after
            # Only busy spans starting before blocked_to and after (blocked_from - longest span) can overlap.
            low, high = bisect_left(busy_starts, blocked_from - longest), bisect_left(busy_starts, blocked_to)
            if any(b.overlaps(blocked_from, blocked_to) for b in busy[low:high]):
                continue
            slots.add(start)
        day += timedelta(days=1)
    return sorted(slots)
