"""What the sitter is told when a session they sit for changes: scheduled or moved (an invite), cancelled,
held after the check-in or left by them (a cancellation), the plan paused (on hold) or resumed (back on).
The patient's name and the time only: never why (no health data in email)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient
from telehealth.accounts.service import patient_contact
from telehealth.dosing.models import DosingSession, Sitter
from telehealth.lib.names import first_name
from telehealth.notifications.service import queue_email
from telehealth.scheduling.ics import calendar_invite

SessionChange = Literal["scheduled", "cancelled", "on_hold", "back_on"]
SITTER_STAYS = timedelta(hours=3)  # the dose, about an hour, and two hours after: what the sitter's invite blocks
# An invite (or its cancellation) travels with the first two; on hold and back on leave the calendar as it is.
TEMPLATES = {
    "scheduled": "sitter_session_scheduled",
    "cancelled": "sitter_session_cancelled",
    "on_hold": "sitter_session_on_hold",
    "back_on": "sitter_session_back_on",
}


def local_time(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%A %d %B %Y at %H:%M %Z")


async def email_sitter(
    session: AsyncSession,
    dosing_session: DosingSession,
    sitter: Sitter,
    *,
    change: SessionChange,
    now: datetime,
    link_url: str | None = None,
) -> None:
    """One email to the sitter about one session. A cancellation's SEQUENCE must be above the invite's:
    the caller bumps `ics_sequence` first."""
    patient = await session.get(Patient, dosing_session.patient_id)
    assert patient is not None
    contact = await patient_contact(session, patient.id)
    context = {
        "recipient_name": sitter.full_name,
        "patient_first_name": first_name(contact.full_name),
        "when_local": local_time(dosing_session.scheduled_at, patient.timezone),
    }
    if link_url:
        context["link_url"] = link_url
    attachments: list[dict[str, str]] = []
    if change in ("scheduled", "cancelled"):
        invite = calendar_invite(
            uid=dosing_session.id,
            sequence=dosing_session.ics_sequence,
            starts_at=dosing_session.scheduled_at,
            ends_at=dosing_session.scheduled_at + SITTER_STAYS,
            summary=f"With {first_name(contact.full_name)} (sitter)",
            description="You will get your link to confirm you are there an hour before.",
            now=now,
            cancel=change == "cancelled",
        )
        attachments = [{"filename": "session.ics", "content_type": "text/calendar", "content": invite}]
    await queue_email(session, to=sitter.email, template=TEMPLATES[change], context=context, now=now, attachments=attachments)
