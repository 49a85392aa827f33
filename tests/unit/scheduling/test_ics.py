"""The calendar invite is written out by hand (scheduling/ics.py); icalendar, the library it replaced, is the oracle:
the same text for the same invite, and what icalendar parses back is what went in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from icalendar import Calendar, Event

from telehealth.scheduling.ics import calendar_invite

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def icalendar_invite(*, uid, sequence, starts_at, ends_at, summary, description, now, cancel=False) -> str:  # type: ignore[no-untyped-def]
    """What scheduling/ics.py built with icalendar before (the seventh session)."""
    calendar = Calendar()
    calendar.add("prodid", "-//telehealth//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", f"{uid}@telehealth")
    event.add("sequence", sequence)
    event.add("dtstamp", now)
    event.add("dtstart", starts_at)
    event.add("dtend", ends_at)
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()


TEXTS = [
    "Appointment with Clinic",
    "Appointment with Clinic, Inc; and a back\\slash",
    "Two\nlines and\r\nanother",
    "Rendez-vous à la clinique Élan — " + "très long " * 12,
    "x" * 73 + "\\" + "y" * 80,  # an escape meeting the fold
    "y" * 74 + ";" + "z" * 10,
    "日本語のクリニック" * 6,  # three octets a character: folds between characters
    *("x" * k + ";^," + "y" * 80 for k in range(62, 69)),  # an escape, and a caret, at every place around the fold
]


@pytest.mark.parametrize("summary", TEXTS)
@pytest.mark.parametrize("cancel", [False, True])
def test_the_invite_is_the_text_icalendar_writes(summary: str, cancel: bool) -> None:
    values = {
        "uid": uuid.uuid4(),
        "sequence": 3,
        "starts_at": START,
        "ends_at": START + timedelta(minutes=45),
        "summary": summary,
        "description": f"Join from your portal: https://clinic.example/{summary[:20]}",
        "now": START - timedelta(days=1, seconds=7),
        "cancel": cancel,
    }
    written = calendar_invite(**values)
    assert written == icalendar_invite(**values)
    assert all(len(line.encode()) <= 75 for line in written.split("\r\n"))
    event = Calendar.from_ical(written).walk("VEVENT")[0]
    assert str(event["summary"]) == summary.replace("\r\n", "\n").replace("\r", "\n")
    assert event.decoded("dtstart") == START and event["sequence"] == 3


def test_times_are_written_in_utc_and_a_naive_one_is_refused() -> None:
    new_york = timezone(timedelta(hours=-5))
    written = calendar_invite(
        uid=uuid.uuid4(),
        sequence=0,
        starts_at=datetime(2026, 11, 24, 10, 0, tzinfo=new_york),
        ends_at=datetime(2026, 11, 24, 10, 30, tzinfo=new_york),
        summary="s",
        description="d",
        now=START,
    )
    assert "DTSTART:20261124T150000Z\r\n" in written and "DTEND:20261124T153000Z\r\n" in written
    with pytest.raises(ValueError):
        naive = datetime(2026, 11, 24, 10)
        calendar_invite(uid=uuid.uuid4(), sequence=0, starts_at=naive, ends_at=START, summary="s", description="d", now=START)
