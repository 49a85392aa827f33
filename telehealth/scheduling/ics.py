"""Calendar invites (RFC 5545): a stable UID per appointment, SEQUENCE raised on every reschedule,
METHOD:CANCEL on cancellation, a generic title and no health details."""

from __future__ import annotations

import uuid
from datetime import datetime

from icalendar import Calendar, Event

from telehealth.scheduling.models import Appointment


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
    calendar = Calendar()
    calendar.add("prodid", "-//telehealth//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", f"{uid}@telehealth")
    event.add("sequence", sequence)
    event.add("dtstamp", now)
    event.add("dtstart", starts_at)  # UTC instants; calendars show them in the reader's zone
    event.add("dtend", ends_at)
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()


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
