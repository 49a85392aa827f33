"""Calendar invites (RFC 5545): a stable UID per appointment, SEQUENCE raised on every reschedule,
METHOD:CANCEL on cancellation, a generic title and no health details."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from telehealth.scheduling.models import Appointment

# Written out rather than built with the icalendar package: its Calendar took 220 us of CPU per invite, a tenth of a
# Stripe delivery that confirms an appointment (docs/benchmarks.md, the seventh session). The properties, their order,
# the TEXT escaping and the folding are icalendar's own; tests/unit/scheduling/test_ics.py holds this text to what
# icalendar writes and parses.
_FOLD_AT = 75  # octets per line (RFC 5545 3.1), the continuation's leading space included


def calendar_invite(
    *,
    uid: uuid.UUID,
    sequence: int,
    starts_at: datetime,
    ends_at: datetime,
    summary: str,
    description: str,
    now: datetime,
    cancel: bool = False,
) -> str:
    lines = (
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//telehealth//appointments//EN",
        f"METHOD:{'CANCEL' if cancel else 'REQUEST'}",
        "BEGIN:VEVENT",
        f"SUMMARY:{_text(summary)}",
        f"DTSTART:{_utc(starts_at)}",  # UTC instants; calendars show them in the reader's zone
        f"DTEND:{_utc(ends_at)}",
        f"DTSTAMP:{_utc(now)}",
        f"UID:{_text(f'{uid}@telehealth')}",
        f"SEQUENCE:{int(sequence)}",
        f"DESCRIPTION:{_text(description)}",
        f"STATUS:{'CANCELLED' if cancel else 'CONFIRMED'}",
        "END:VEVENT",
        "END:VCALENDAR",
    )
    return "".join(_folded(line) + "\r\n" for line in lines)


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("an invite's times are instants: attach a time zone")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """A TEXT value escaped (RFC 5545 3.3.11): backslash, semicolon and comma, and a line break as \\n."""
    escaped = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


def _folded(line: str) -> str:
    """A content line folded into lines of at most 75 octets (RFC 5545 3.1), never right after a backslash escape (nor
    a caret, RFC 6868's escape, as icalendar folds)."""
    if len(line.encode()) < _FOLD_AT:
        return line
    parts: list[str] = []
    current: list[str] = []
    octets = 0
    for char in line:
        size = len(char.encode())
        if current and octets + size >= _FOLD_AT:
            carried = current.pop() if len(current) > 1 and current[-1] in "\\^" else ""
            parts.append("".join(current))
            current, octets = ([carried] if carried else []), len(carried)
        current.append(char)
        octets += size
    parts.append("".join(current))
    return "\r\n ".join(parts)


def appointment_ics(appointment: Appointment, *, clinic_name: str, portal_url: str, now: datetime, cancel: bool = False) -> str:
    return calendar_invite(
        uid=appointment.id,
        sequence=appointment.ics_sequence,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        summary=f"Appointment with {clinic_name}",
        description=f"Join from your portal: {portal_url}",
        now=now,
        cancel=cancel,
    )
