"""The patient's journey in one place: where they are (waiting list -> intake -> consult -> plan ->
shipment -> sessions -> reassessment) and the one next step, always the most urgent thing first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, bindparam, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient
from telehealth.billing.models import Payment
from telehealth.billing.states import PaymentStatus
from telehealth.dosing.models import DosingSession, Sitter
from telehealth.dosing.states import SessionStatus, SitterStatus
from telehealth.intake.escalations import has_open_crisis
from telehealth.intake.models import Intake, IntakeSection
from telehealth.intake.service import latest_decision
from telehealth.prescribing.models import PlanBatch, TrochePlan
from telehealth.prescribing.reassessment import due_reassessment
from telehealth.prescribing.states import BatchStatus, PlanStatus
from telehealth.scheduling.models import Appointment

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
    upcoming_appointments: list[Appointment]
    next_session: DosingSession | None

    @property
    def stages(self) -> list[tuple[str, str]]:
        return [(name, "done" if i < self.reached else "current" if i == self.reached else "upcoming") for i, name in enumerate(STAGES)]


# The dashboard's statements, built once (every visit to the patient's home runs them; building one costs
# more than PostgreSQL's answer to it). Parameters: patient_id, now, plan_id, intake_id.
_PATIENT: BindParameter[uuid.UUID] = bindparam("patient_id")
_NEWEST_PLAN = (
    select(TrochePlan)
    .where(TrochePlan.patient_id == _PATIENT, TrochePlan.status != PlanStatus.DRAFT)
    .order_by(col(TrochePlan.created_at).desc())
    .limit(1)
)
_UPCOMING = (
    select(Appointment)
    .where(Appointment.patient_id == _PATIENT, col(Appointment.status).in_(["held", "booked"]), Appointment.ends_at > bindparam("now"))
    .order_by(col(Appointment.starts_at))
    .limit(5)
)
_NEXT_SESSION = (
    select(DosingSession)
    .where(DosingSession.patient_id == _PATIENT, col(DosingSession.status).in_([SessionStatus.SCHEDULED, SessionStatus.UNLOCKED]))
    .order_by(col(DosingSession.scheduled_at))
    .limit(1)
)
_LATEST_INTAKE = select(Intake).where(Intake.patient_id == _PATIENT).order_by(col(Intake.started_at).desc()).limit(1)
_SECTIONS_SAVED = select(func.count()).select_from(IntakeSection).where(IntakeSection.intake_id == bindparam("intake_id"))
_PAYMENT_DUE = select(Payment.id).where(Payment.patient_id == _PATIENT, Payment.status == PaymentStatus.OPEN).limit(1)
_DELIVERED_BATCHES = (
    select(func.count()).select_from(PlanBatch).where(PlanBatch.plan_id == bindparam("plan_id"), PlanBatch.status == BatchStatus.DELIVERED)
)
_CONFIRMED_SITTER = select(Sitter.id).where(Sitter.patient_id == _PATIENT, Sitter.status == SitterStatus.CONFIRMED).limit(1)


async def _newest_plan(session: AsyncSession, patient_id: object) -> TrochePlan | None:
    return (await session.execute(_NEWEST_PLAN, {"patient_id": patient_id})).scalar_one_or_none()


async def patient_journey(session: AsyncSession, patient: Patient, *, now: datetime) -> Journey:
    upcoming = list((await session.execute(_UPCOMING, {"patient_id": patient.id, "now": now})).scalars())
    next_session = (await session.execute(_NEXT_SESSION, {"patient_id": patient.id})).scalar_one_or_none()
    reached, step = await _where(session, patient, now=now, upcoming=upcoming, next_session=next_session)
    if await has_open_crisis(session, patient_id=patient.id):
        step = NextStep("A clinician will contact you soon. If you are in danger now, call or text 988, or call 911.", urgent=True)
    return Journey(reached, step, upcoming, next_session)


async def _where(
    session: AsyncSession, patient: Patient, *, now: datetime, upcoming: list[Appointment], next_session: DosingSession | None
) -> tuple[int, NextStep]:
    """The stage is read from the furthest evidence first: a patient with a signed plan is past intake even
    when no intake is on file here (a transfer, the demo), and a consultation still ahead or under way is
    the stage in progress, never marked done because a plan was signed during it."""
    plan = await _newest_plan(session, patient.id)
    if plan is None:
        return await _before_plan(session, patient, upcoming=upcoming)
    consult = next((a for a in upcoming if a.appointment_type == "consult"), None)
    if consult is not None:
        return 2, NextStep("Your consultation is booked. Join from here when it is time.", "See my appointments", "/appointments")
    due = await session.scalar(_PAYMENT_DUE, {"patient_id": patient.id})
    if due is not None:
        return 3, NextStep("A payment is due: your first shipment leaves once it is paid.", "Go to billing", "/billing")
    reassessment = await due_reassessment(session, patient_id=patient.id)
    if reassessment is not None and not reassessment.answered:
        return 6, NextStep(
            "Time for your reassessment: answer the mood and anxiety questionnaires again.", "Answer the questionnaires", "/reassessment"
        )
    if plan.status == PlanStatus.PAUSED:
        return 5, NextStep(
            "Your plan is paused until your prescriber reviews it. They will contact you.", "Message my care team", "/messages", urgent=True
        )
    if plan.status in (PlanStatus.COMPLETED, PlanStatus.DISCONTINUED):
        return 6, NextStep("Your plan has ended. See how your scores changed.", "See my scores", "/outcomes")
    delivered = await session.scalar(_DELIVERED_BATCHES, {"plan_id": plan.id})
    if not delivered:
        return 4, NextStep("Your prescription is with the pharmacy. Track your shipment.", "Track my shipment", "/shipments")
    return 5, await _session_step(session, patient, plan, next_session, now=now)


async def _before_plan(session: AsyncSession, patient: Patient, *, upcoming: list[Appointment]) -> tuple[int, NextStep]:
    intake = (await session.execute(_LATEST_INTAKE, {"patient_id": patient.id})).scalar_one_or_none()
    if intake is None or intake.status != "submitted":
        started = intake is not None and bool(await session.scalar(_SECTIONS_SAVED, {"intake_id": intake.id}))
        return 1, NextStep(
            "Tell us about yourself and your health: about 20 minutes, saved as you go.",
            "Continue my intake" if started else "Start my intake",
            "/intake",
        )
    decision = await latest_decision(session, patient_id=patient.id)
    if decision is not None and decision.outcome == "ineligible":
        return 1, NextStep(
            "This program is not a safe fit for you right now. See why, and other kinds of care.", "See the details", "/intake/result"
        )
    if any(a.appointment_type == "consult" for a in upcoming):
        return 2, NextStep("Your consultation is booked. Join from here when it is time.", "See my appointments", "/appointments")
    return 2, NextStep("Book a video consultation with a prescriber.", "Book a consultation", "/appointments/book")


async def _session_step(
    session: AsyncSession, patient: Patient, plan: TrochePlan, next_session: DosingSession | None, *, now: datetime
) -> NextStep:
    if next_session is not None and next_session.status == SessionStatus.UNLOCKED:
        return NextStep(f"Tell us how session {next_session.number} went.", "Report on my session", f"/dosing/sessions/{next_session.id}")
    if next_session is not None:
        opens = next_session.scheduled_at - timedelta(hours=1)
        words = "Check in now" if now >= opens else "See my session"
        return NextStep(
            f"Session {next_session.number} is scheduled. Check in during the hour before it.", words, f"/dosing/sessions/{next_session.id}"
        )
    confirmed = await session.scalar(_CONFIRMED_SITTER, {"patient_id": patient.id})
    if confirmed is None:
        return NextStep("Name a sitter: an adult who stays with you during each session.", "Add a sitter", "/dosing#sitters")
    return NextStep("Schedule your next home session.", "Schedule a session", "/dosing")
