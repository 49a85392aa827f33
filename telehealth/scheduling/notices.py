"""What a patient is told about an appointment: the confirmation or cancellation (with its calendar
invite) and reminders 24 h and 1 h before, which re-read the appointment when they are due."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.service import patient_contact
from telehealth.notifications.service import queue_email
from telehealth.outbox.service import enqueue_job
from telehealth.scheduling.ics import appointment_ics
from telehealth.scheduling.models import Appointment
from telehealth.settings import Settings

REMIND_JOB = "scheduling.remind"
REMIND_BEFORE = {"24h": timedelta(hours=24), "1h": timedelta(hours=1)}


def when_local(appointment: Appointment, zone: str) -> str:
    return appointment.starts_at.astimezone(ZoneInfo(zone)).strftime("%A %d %B %Y at %H:%M %Z")


async def tell_patient(
    session: AsyncSession, appointment: Appointment, *, now: datetime, settings: Settings, cancelled: bool = False
) -> None:
    """Email the confirmation (or cancellation) with the invite, and (re)schedule the reminders."""
    recipient = await patient_contact(session, appointment.patient_id)
    invite = appointment_ics(
        appointment, clinic_name=settings.clinic_name, portal_url=settings.public_base_url + "/", now=now, cancel=cancelled
    )
    await queue_email(
        session,
        to=recipient.email,
        template="appointment_cancelled" if cancelled else "appointment_confirmed",
        context={"recipient_name": recipient.full_name, "when_local": when_local(appointment, recipient.timezone)},
        now=now,
        attachments=[{"filename": "appointment.ics", "content_type": "text/calendar", "content": invite}],
    )
    if cancelled:
        return  # queued reminders find the appointment cancelled and send nothing
    for which, before in REMIND_BEFORE.items():
        run_at = appointment.starts_at - before
        if run_at > now:
            await enqueue_job(
                session,
                kind=REMIND_JOB,
                now=now,
                run_at=run_at,
                payload={"appointment_id": str(appointment.id), "sequence": appointment.ics_sequence, "which": which},
                dedupe_key=f"remind:{appointment.id}:{appointment.ics_sequence}:{which}",
            )


async def send_reminder_if_still_due(session: AsyncSession, payload: dict[str, object], *, now: datetime, settings: Settings) -> bool:
    """A reminder goes out only for a booked appointment that has not moved since it was scheduled."""
    appointment = await session.get(Appointment, payload["appointment_id"])
    if (
        appointment is None
        or appointment.status != "booked"
        or appointment.ics_sequence != payload["sequence"]
        or appointment.starts_at <= now
    ):
        return False
    recipient = await patient_contact(session, appointment.patient_id)
    await queue_email(
        session,
        to=recipient.email,
        template="appointment_reminder",
        context={"recipient_name": recipient.full_name, "when_local": when_local(appointment, recipient.timezone)},
        now=now,
    )
    return True
