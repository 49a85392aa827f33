"""Slot computation: hours in the clinician's zone across DST, buffers, notice, horizon, limits, overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from telehealth.scheduling.slots import Availability, Busy, TimeRange, TypeSettings, clear_of_busy, open_slots, open_slots_sorted, soonest

NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NINE_TO_NOON = (TimeRange(time(9), time(12)),)
CONSULT = TypeSettings(duration=timedelta(minutes=45), step=timedelta(minutes=15), minimum_notice=timedelta(0), horizon=timedelta(days=400))


def every_day(ranges=NINE_TO_NOON, **kwargs) -> Availability:
    return Availability(zone=NEW_YORK, weekly=dict.fromkeys(range(7), ranges), **kwargs)


def slots_on(day: date, availability: Availability, settings: TypeSettings = CONSULT, busy=(), now=None) -> list[datetime]:
    start = datetime.combine(day, time(0), tzinfo=availability.zone).astimezone(UTC)
    return open_slots(
        availability, settings, busy, window_start=start, window_end=start + timedelta(days=1), now=now or start - timedelta(days=1)
    )


def local(slots: list[datetime], zone=NEW_YORK) -> list[str]:
    return [s.astimezone(zone).strftime("%H:%M") for s in slots]


def test_nine_to_noon_in_fifteen_minute_steps():
    assert local(slots_on(date(2027, 1, 12), every_day())) == [
        "09:00",
        "09:15",
        "09:30",
        "09:45",
        "10:00",
        "10:15",
        "10:30",
        "10:45",
        "11:00",
        "11:15",
    ]


def test_nine_stays_nine_local_across_both_us_transitions():
    before_spring, after_spring = date(2027, 3, 13), date(2027, 3, 15)  # DST starts 2027-03-14
    before_fall, after_fall = date(2027, 11, 6), date(2027, 11, 8)  # DST ends 2027-11-07
    firsts = {day: slots_on(day, every_day())[0] for day in (before_spring, after_spring, before_fall, after_fall)}
    assert {day: s.astimezone(NEW_YORK).strftime("%H:%M") for day, s in firsts.items()} == dict.fromkeys(firsts, "09:00")
    assert firsts[before_spring].astimezone(UTC).hour == 14 and firsts[after_spring].astimezone(UTC).hour == 13
    assert firsts[before_fall].astimezone(UTC).hour == 13 and firsts[after_fall].astimezone(UTC).hour == 14


def test_the_spring_gap_is_skipped_and_the_fall_hour_not_doubled():
    night = (TimeRange(time(1, 0), time(4, 0)),)
    spring = slots_on(
        date(2027, 3, 14),
        every_day(night),
        TypeSettings(duration=timedelta(minutes=30), step=timedelta(minutes=30), minimum_notice=timedelta(0)),
    )
    assert local(spring) == ["01:00", "01:30", "03:00", "03:30"]  # 02:00-03:00 does not exist that night
    fall = slots_on(
        date(2027, 11, 7),
        every_day(night),
        TypeSettings(duration=timedelta(minutes=30), step=timedelta(minutes=30), minimum_notice=timedelta(0)),
    )
    assert len(fall) == len(set(fall))
    assert (fall[-1] + timedelta(minutes=30) - fall[0]) == timedelta(hours=4)  # 01:00 to 04:00 spans 4 real hours


def test_a_patient_in_another_zone_sees_the_same_instants_in_their_time():
    slots = slots_on(date(2027, 1, 12), every_day())
    assert local(slots, LOS_ANGELES)[0] == "06:00"


def test_busy_times_and_both_buffers_are_respected():
    settings = TypeSettings(
        duration=timedelta(minutes=45), buffer_before=timedelta(minutes=15), buffer_after=timedelta(minutes=15), minimum_notice=timedelta(0)
    )
    day = date(2027, 1, 12)
    ten = datetime(2027, 1, 12, 10, 0, tzinfo=NEW_YORK)
    busy = [Busy(ten - timedelta(minutes=15), ten + timedelta(minutes=45 + 15))]  # an existing 10:00 consult with its buffers
    # Buffers add up, as the database's exclusion constraint counts them: 09:00 would end its after-buffer
    # at 10:00, inside the 10:00 consult's before-buffer; 11:00 would start its before-buffer at 10:45.
    assert local(slots_on(day, every_day(), settings, busy)) == ["11:15"]


def test_minimum_notice_and_horizon():
    day = date(2027, 1, 12)
    now = datetime(2027, 1, 11, 22, 0, tzinfo=NEW_YORK)
    twelve_hours = TypeSettings(duration=timedelta(minutes=45), minimum_notice=timedelta(hours=12))
    assert local(slots_on(day, every_day(), twelve_hours, now=now))[0] == "10:00"  # 22:00 + 12 h
    short_horizon = TypeSettings(duration=timedelta(minutes=45), minimum_notice=timedelta(0), horizon=timedelta(hours=12, minutes=30))
    assert local(slots_on(day, every_day(), short_horizon, now=now)) == ["09:00", "09:15", "09:30", "09:45", "10:00", "10:15"]


def test_day_off_extra_hours_and_daily_limit():
    day = date(2027, 1, 12)
    assert slots_on(day, every_day(days_off=frozenset({day}))) == []
    extra = every_day(extra={day: (TimeRange(time(14), time(15)),)})
    assert local(slots_on(day, extra))[-2:] == ["14:00", "14:15"]
    start = datetime.combine(day, time(0), tzinfo=NEW_YORK).astimezone(UTC)
    limited = TypeSettings(duration=timedelta(minutes=45), minimum_notice=timedelta(0), max_per_day=3)
    assert (
        open_slots(every_day(), limited, [], window_start=start, window_end=start + timedelta(days=1), now=start, booked_per_day={day: 3})
        == []
    )


def _reference_open_slots(availability, settings, busy, *, window_start, window_end, now, booked_per_day=None):
    """The rule written the plain way (every candidate against every busy span), to check the fast engine."""
    earliest, latest = max(window_start, now + settings.minimum_notice), min(window_end, now + settings.horizon)
    found = set()
    day = earliest.astimezone(availability.zone).date()
    while day <= latest.astimezone(availability.zone).date():
        if settings.max_per_day is None or (booked_per_day or {}).get(day, 0) < settings.max_per_day:
            ranges = (
                ()
                if day in availability.days_off
                else (*availability.weekly.get(day.weekday(), ()), *(availability.extra or {}).get(day, ()))
            )
            for hours in ranges:
                opens = datetime.combine(day, hours.start, tzinfo=availability.zone)
                if opens.astimezone(UTC).astimezone(availability.zone).time() != hours.start:
                    continue  # in the spring gap
                if hours.end == time.max:
                    closes = datetime.combine(day + timedelta(days=1), time(0), tzinfo=availability.zone)
                else:
                    closes = datetime.combine(day, hours.end, tzinfo=availability.zone)
                    if closes.astimezone(UTC).astimezone(availability.zone).time() != hours.end:
                        continue
                start = opens.astimezone(UTC)
                while start + settings.duration <= closes.astimezone(UTC):
                    span = (start - settings.buffer_before, start + settings.duration + settings.buffer_after)
                    if earliest <= start < latest and not any(b.start < span[1] and span[0] < b.end for b in busy):
                        found.add(start)
                    start += settings.step
        day += timedelta(days=1)
    return sorted(found)


def test_the_fast_engine_agrees_with_the_plain_rule_on_random_calendars():
    import random

    rng = random.Random(20261122)
    zones = [NEW_YORK, LOS_ANGELES, ZoneInfo("Pacific/Honolulu"), ZoneInfo("Europe/London"), ZoneInfo("Australia/Lord_Howe")]
    minutes = lambda n: timedelta(minutes=n)  # noqa: E731
    for case in range(400):
        zone = rng.choice(zones)
        weekly = {}
        for weekday in range(7):
            ranges = []
            for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
                opens = rng.randrange(0, 23 * 60, 5)
                closes = rng.choice([min(24 * 60, opens + rng.randrange(15, 10 * 60, 5)), 24 * 60])
                ranges.append(TimeRange(time(opens // 60, opens % 60), time.max if closes == 24 * 60 else time(closes // 60, closes % 60)))
            weekly[weekday] = tuple(ranges)
        # Around both US transitions and ordinary weeks.
        first_day = rng.choice([date(2027, 3, 12), date(2027, 11, 5), date(2027, 1, 11), date(2027, 10, 1)])
        window_start = datetime.combine(first_day, time(rng.randrange(24)), tzinfo=UTC) + minutes(rng.randrange(0, 60, 7))
        window_end = window_start + timedelta(hours=rng.randrange(1, 24 * 5))
        days = [first_day + timedelta(days=n) for n in range(6)]
        availability = Availability(
            zone=zone,
            weekly=weekly,
            days_off=frozenset(rng.sample(days, rng.choice([0, 0, 1]))),
            extra={rng.choice(days): (TimeRange(time(rng.randrange(0, 12)), time(rng.randrange(13, 23))),)} if rng.random() < 0.4 else None,
        )
        settings = TypeSettings(
            duration=minutes(rng.choice([10, 30, 45, 50, 90])),
            buffer_before=minutes(rng.choice([0, 0, 5, 15])),
            buffer_after=minutes(rng.choice([0, 10, 15])),
            minimum_notice=minutes(rng.choice([0, 60, 720])),
            horizon=timedelta(hours=rng.choice([6, 48, 24 * 30])),
            max_per_day=rng.choice([None, None, 1, 3]),
            step=minutes(rng.choice([5, 15, 20, 30, 60])),
        )
        busy = []
        for _ in range(rng.randrange(0, 30)):
            start = window_start + minutes(rng.randrange(-24 * 60, 5 * 24 * 60, rng.choice([1, 5, 15])))
            busy.append(Busy(start, start + minutes(rng.randrange(1, 180))))
        booked = {day: rng.randrange(0, 4) for day in days}
        now = window_start - timedelta(hours=rng.randrange(0, 30))
        arguments = {"window_start": window_start, "window_end": window_end, "now": now, "booked_per_day": booked}
        expected = _reference_open_slots(availability, settings, busy, **arguments)
        assert open_slots(availability, settings, busy, **arguments) == expected, case
        if settings.max_per_day is None:  # spans as the database aggregates them: sorted by start only
            by_start = sorted(busy, key=lambda b: b.start)
            starts, ends = [b.start for b in by_start], [b.end for b in by_start]
            assert (
                open_slots_sorted(availability, settings, starts, ends, window_start=window_start, window_end=window_end, now=now)
                == expected
            ), case
            unbooked = open_slots_sorted(availability, settings, [], [], window_start=window_start, window_end=window_end, now=now)
            assert clear_of_busy(unbooked, settings, starts, ends) == expected, case


def test_soonest_answers_what_merging_every_clinicians_starts_answers():
    """soonest against heapq.merge on 500 random rosters: shared grids (many clinicians at one instant),
    repeated names, empty lists, and `wanted` below, at and above the number of starts."""
    import heapq
    import random
    from itertools import islice, repeat

    rng = random.Random(11)
    base = datetime(2027, 1, 12, 14, tzinfo=UTC)
    for case in range(500):
        streams = []
        for who in range(rng.randrange(0, 25)):
            grid = rng.choice([5, 15, 30])
            offset = timedelta(seconds=rng.choice([0, 0, 17]))  # hours need not open on the minute
            starts = sorted({base + offset + timedelta(minutes=grid * rng.randrange(0, 40)) for _ in range(rng.randrange(0, 12))})
            streams.append((starts, rng.choice(["Ames", "Baker", "Cole"]), who))
        total = sum(len(starts) for starts, _, _ in streams)
        for wanted in (None, 1, rng.randrange(1, total + 2), total, total + 5):
            merged = heapq.merge(*(zip(starts, repeat(name), repeat(who)) for starts, name, who in streams))
            expected = list(merged if wanted is None else islice(merged, wanted))
            assert soonest(streams, wanted) == expected, (case, wanted)
