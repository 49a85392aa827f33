"""The patient's journey in one place: where they are (waiting list -> intake -> consult -> plan ->
shipment -> sessions -> reassessment) and the one next step, always the most urgent thing first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient
from telehealth.billing.states import PaymentStatus
from telehealth.db import driver
from telehealth.db.driver import Record
from telehealth.dosing.reassessment_due import due_for_plan
from telehealth.dosing.states import SessionStatus, SitterStatus
from telehealth.intake.escalations import has_open_crisis
from telehealth.intake.service import latest_outcome
from telehealth.prescribing.plans import newest_signed_plan
from telehealth.prescribing.states import BatchStatus, PlanStatus

STAGES = ("Waiting list", "Intake", "Consultation", "Plan", "Shipment", "Home sessions", "Reassessment")


@dataclass(frozen=True)
class NextStep:
    text: str
    action: str | None = None  # the button's words
    href: str | None = None
    urgent: bool = False


@dataclass(frozen=True)
class Journey:
    reached: int  # index into STAGES of the stage in progress (all before it are done)
    next_step: NextStep
    upcoming_appointments: list[Record]  # id, appointment_type, status, starts_at
    next_session: Record | None  # id, number, status, scheduled_at

    @property
    def stages(self) -> list[tuple[str, str]]:
        return [(name, "done" if i < self.reached else "current" if i == self.reached else "upcoming") for i, name in enumerate(STAGES)]


# The dashboard's statements, on the driver (telehealth/db/driver.py): every visit to the patient's home runs
# them, and through the ORM each cost several times PostgreSQL's answer. Read as records (by attribute in the
# template); nothing here is changed, so no ORM object is needed. $1 is the patient's id throughout.
_UPCOMING = """
SELECT id, appointment_type, status, starts_at FROM appointment
WHERE patient_id = $1 AND status IN ('held', 'booked') AND ends_at > $2 ORDER BY starts_at LIMIT 5
"""
_NEXT_SESSION = f"""
SELECT id, number, status, scheduled_at FROM dosing_session
WHERE patient_id = $1 AND status IN ('{SessionStatus.SCHEDULED.value}', '{SessionStatus.UNLOCKED.value}') ORDER BY scheduled_at LIMIT 1
"""
_LATEST_INTAKE = "SELECT id, status FROM intake WHERE patient_id = $1 ORDER BY started_at DESC LIMIT 1"
_SECTIONS_SAVED = "SELECT EXISTS (SELECT FROM intake_section WHERE intake_id = $1)"
_PAYMENT_DUE = f"SELECT EXISTS (SELECT FROM payment WHERE patient_id = $1 AND status = '{PaymentStatus.OPEN.value}')"
_ANY_DELIVERED = f"SELECT EXISTS (SELECT FROM plan_batch WHERE plan_id = $1 AND status = '{BatchStatus.DELIVERED.value}')"
_CONFIRMED_SITTER = f"SELECT EXISTS (SELECT FROM sitter WHERE patient_id = $1 AND status = '{SitterStatus.CONFIRMED.value}')"


async def patient_journey(session: AsyncSession, patient: Patient, *, now: datetime) -> Journey:
    upcoming = await driver.fetch(session, _UPCOMING, patient.id, driver.utc(now))
    next_session = await driver.fetchrow(session, _NEXT_SESSION, patient.id)
    reached, step = await _where(session, patient, now=now, upcoming=upcoming, next_session=next_session)
    if await has_open_crisis(session, patient_id=patient.id):
        step = NextStep("A clinician will contact you soon. If you are in danger now, call or text 988, or call 911.", urgent=True)
    return Journey(reached, step, upcoming, next_session)


async def _where(
    session: AsyncSession, patient: Patient, *, now: datetime, upcoming: list[Record], next_session: Record | None
) -> tuple[int, NextStep]:
    """The stage is read from the furthest evidence first: a patient with a signed plan is past intake even
    when no intake is on file here (a transfer, the demo), and a consultation still ahead or under way is
    the stage in progress, never marked done because a plan was signed during it."""
    plan = await newest_signed_plan(session, patient_id=patient.id)
    if plan is None:
        return await _before_plan(session, patient, upcoming=upcoming)
    consult = next((a for a in upcoming if a["appointment_type"] == "consult"), None)
    if consult is not None:
        return 2, NextStep("Your consultation is booked. Join from here when it is time.", "See my appointments", "/appointments")
    if await driver.fetchval(session, _PAYMENT_DUE, patient.id):
        return 3, NextStep("A payment is due: your first shipment leaves once it is paid.", "Go to billing", "/billing")
    reassessment = await due_for_plan(session, plan)
    if reassessment is not None and not reassessment.answered:
        return 6, NextStep(
            "Time for your reassessment: answer the mood and anxiety questionnaires again.", "Answer the questionnaires", "/reassessment"
        )
    if plan["status"] == PlanStatus.PAUSED:
        return 5, NextStep(
            "Your plan is paused until your prescriber reviews it. They will contact you.", "Message my care team", "/messages", urgent=True
        )
    if plan["status"] in (PlanStatus.COMPLETED, PlanStatus.DISCONTINUED):
        return 6, NextStep("Your plan has ended. See how your scores changed.", "See my scores", "/outcomes")
    if not await driver.fetchval(session, _ANY_DELIVERED, plan["id"]):
        return 4, NextStep("Your prescription is with the pharmacy. Track your shipment.", "Track my shipment", "/shipments")
    return 5, await _session_step(session, patient, next_session, now=now)


async def _before_plan(session: AsyncSession, patient: Patient, *, upcoming: list[Record]) -> tuple[int, NextStep]:
    intake = await driver.fetchrow(session, _LATEST_INTAKE, patient.id)
    if intake is None or intake["status"] != "submitted":
        started = intake is not None and await driver.fetchval(session, _SECTIONS_SAVED, intake["id"])
        return 1, NextStep(
            "Tell us about yourself and your health: about 20 minutes, saved as you go.",
            "Continue my intake" if started else "Start my intake",
            "/intake",
        )
    if await latest_outcome(session, patient_id=patient.id) == "ineligible":
        return 1, NextStep(
            "This program is not a safe fit for you right now. See why, and other kinds of care.", "See the details", "/intake/result"
        )
    if any(a["appointment_type"] == "consult" for a in upcoming):
        return 2, NextStep("Your consultation is booked. Join from here when it is time.", "See my appointments", "/appointments")
    return 2, NextStep("Book a video consultation with a prescriber.", "Book a consultation", "/appointments/book")


async def _session_step(session: AsyncSession, patient: Patient, next_session: Record | None, *, now: datetime) -> NextStep:
    if next_session is not None and next_session["status"] == SessionStatus.UNLOCKED:
        return NextStep(
            f"Tell us how session {next_session['number']} went.", "Report on my session", f"/dosing/sessions/{next_session['id']}"
        )
    if next_session is not None:
        opens = next_session["scheduled_at"] - timedelta(hours=1)
        words = "Check in now" if now >= opens else "See my session"
        return NextStep(
            f"Session {next_session['number']} is scheduled. Check in during the hour before it.",
            words,
            f"/dosing/sessions/{next_session['id']}",
        )
    if not await driver.fetchval(session, _CONFIRMED_SITTER, patient.id):
        return NextStep("Name a sitter: an adult who stays with you during each session.", "Add a sitter", "/dosing#sitters")
    return NextStep("Schedule your next home session.", "Schedule a session", "/dosing")
