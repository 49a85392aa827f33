"""The booking pages' day picker, pure: the open days of a slot search with how many times each has, one day's
times, and the `?day=` a page was asked for, read and checked. Days and times are in the viewer's zone.

A search answers one slot per clinician and start; the patient picks a time, not a clinician, so a day shows
each start once, with the first clinician offering it (slots sort by start, then clinician name)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from telehealth.scheduling.service import Slot

DAYS_SHOWN = 14  # today and the 13 days after it, whole days in the viewer's zone


@dataclass(frozen=True)
class OpenDay:
    day: date
    label: str  # "Tue 8 Dec"
    times: int  # distinct start times that day


class DayNotShown(ValueError):
    """`?day=` is not a date, or not one of the days the page shows; the sentence says which, in plain words."""


def window(now: datetime, zone: ZoneInfo) -> tuple[date, datetime, datetime]:
    """(today in the zone, where the search starts, where it ends: midnight after the last day shown)."""
    today = now.astimezone(zone).date()
    last_midnight = datetime.combine(today + timedelta(days=DAYS_SHOWN), datetime.min.time(), tzinfo=zone)
    return today, now, last_midnight


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _local_day(slot: Slot, zone: ZoneInfo) -> date:
    return slot.starts_at.astimezone(zone).date()


def open_days(slots: list[Slot], zone: ZoneInfo) -> list[OpenDay]:
    """Each day with at least one open time, soonest first, with its number of distinct times."""
    return [
        OpenDay(day, day_label(day), len({slot.starts_at for slot in group}))
        for day, group in groupby(slots, key=lambda slot: _local_day(slot, zone))
    ]


def times_on(slots: list[Slot], zone: ZoneInfo, day: date) -> list[Slot]:
    """That day's open times, each start once (its first clinician), soonest first."""
    on_day = (slot for slot in slots if _local_day(slot, zone) == day)
    return [next(group) for _, group in groupby(on_day, key=lambda slot: slot.starts_at)]


def parse_day(raw: str | None, *, today: date) -> date | None:
    """The day a page was asked for (None: none asked). Raises DayNotShown for anything but one of the days shown."""
    if raw is None or raw == "":
        return None
    try:
        day = date.fromisoformat(raw.strip()) if len(raw) <= 10 else None
    except ValueError:
        day = None
    if day is None:
        raise DayNotShown("That day is not a date we can read. Choose one of the days below.")
    if not today <= day < today + timedelta(days=DAYS_SHOWN):
        raise DayNotShown(
            f"Appointments can be booked from today to {day_label(today + timedelta(days=DAYS_SHOWN - 1))}. Choose one of the days below."
        )
    return day
