"""Calendar invites sent by email as iTIP over iMIP (RFC 5546, RFC 6047): the event names its ORGANIZER
(the clinic's sending address) and its ATTENDEE (the recipient), and the MIME part says the method
(`text/calendar; method=REQUEST` or `CANCEL`), so a calendar offers to add, move or remove the event
instead of showing a file. Done when the message is built, where sender and recipient are known."""

from __future__ import annotations

from email.utils import parseaddr

from icalendar import Calendar, vCalAddress


def _address(header_value: str) -> vCalAddress:
    name, address = parseaddr(header_value)
    who = vCalAddress(f"mailto:{address}")
    if name:
        who.params["CN"] = name
    return who


def address_invite(ics: str, *, organizer: str, attendee: str) -> tuple[str, str]:
    """The invite with ORGANIZER and ATTENDEE set on every event, and its METHOD (for the Content-Type)."""
    calendar = Calendar.from_ical(ics)
    for event in calendar.walk("VEVENT"):
        for key in ("ORGANIZER", "ATTENDEE"):
            event.pop(key, None)
        event.add("organizer", _address(organizer))
        who = _address(attendee)
        who.params.update({"ROLE": "REQ-PARTICIPANT", "RSVP": "FALSE"})
        event.add("attendee", who)
    method = str(calendar.get("METHOD", "PUBLISH")).upper()
    return calendar.to_ical().decode(), method
