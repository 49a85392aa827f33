"""Calendar invites (RFC 5545): a stable UID per appointment, SEQUENCE raised on every reschedule,
METHOD:CANCEL on cancellation, a generic title and no health details."""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

from telehealth.scheduling.models import Appointment


def appointment_ics(appointment: Appointment, *, clinic_name: str, portal_url: str, now: datetime, cancel: bool = False) -> str:
    calendar = Calendar()
    calendar.add("prodid", "-//telehealth//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancel else "REQUEST")
    event = Event()
    event.add("uid", f"{appointment.id}@telehealth")
    event.add("sequence", appointment.ics_sequence)
    event.add("dtstamp", now)
    event.add("dtstart", appointment.starts_at)  # UTC instants; calendars show them in the reader's zone
    event.add("dtend", appointment.ends_at)
    event.add("summary", f"Appointment with {clinic_name}")
    event.add("description", f"Join from your portal: {portal_url}")
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical().decode()
