"""Booking rules: the patient-side gates every booking passes (no crisis waiting for a clinician's contact,
screening, the plan's reassessment, enrollment), then what it costs, then the slot.

Every booking goes through here: a patient's own (pages and API) and a therapist's follow-up. The slot itself is
scheduling's (take_slot: the check of the time, the race under exclusion constraints, the hold); the fee is
billing's; when a reassessment is due is dosing's (it counts reported sessions). This area sits above all of them,
so none of them imports another to book.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.billing import policy as rules
from telehealth.billing import service as billing
from telehealth.billing.models import Payment
from telehealth.dosing.reassessment_due import needs_reassessment
from telehealth.intake.escalations import has_open_crisis
from telehealth.intake.service import latest_outcome
from telehealth.lib.actors import Actor
from telehealth.lib.errors import RuleRefused
from telehealth.scheduling import service as scheduling
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.states import AppointmentType
from telehealth.settings import Settings


async def may_book(session: AsyncSession, *, patient: Patient, appointment_type: AppointmentType) -> None:
    """The patient-side gates, for every way to book: no crisis waits for a clinician's contact; a consult needs a
    screening that allows it, a reassessment a plan that needs one, an integration session an enrolled patient."""
    if await has_open_crisis(session, patient_id=patient.id):
        raise RuleRefused(
            "booking.crisis_contact_pending",
            "Before booking, a clinician needs to speak with you. We will call you soon; if you need help now, call or text 988.",
        )
    if appointment_type is AppointmentType.CONSULT:
        if await latest_outcome(session, patient_id=patient.id) not in ("eligible", "needs_review"):
            raise RuleRefused("booking.screening_required", "Booking opens once your intake is complete and screening allows it.")
    elif appointment_type is AppointmentType.REASSESSMENT:
        if not await needs_reassessment(session, patient_id=patient.id):
            raise RuleRefused(
                "booking.reassessment_needs_plan",
                "A reassessment is booked once your plan needs one: after its last session, or every 6 sessions.",
            )
    else:
        if await latest_outcome(session, patient_id=patient.id) in (None, "ineligible"):
            raise RuleRefused("booking.not_enrolled", "Integration sessions are for patients enrolled in the program.")


async def book_for_patient(
    session: AsyncSession,
    *,
    patient: Patient,
    clinician_id: uuid.UUID,
    appointment_type: AppointmentType,
    starts_at: datetime,
    hold: bool,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> tuple[Appointment, int | None]:
    """A patient's own booking, from the pages or the API: the gates first (may_book), then the fee. One that
    costs something (every consult; an integration session once the program's included ones are used) is held
    for billing's CHECKOUT_HOLD and becomes booked only when Stripe confirms the payment. Booking does not call
    Stripe: the payment and its Checkout Session are made when the patient goes to pay
    (billing.service.checkout_for_held_appointment), and a session never opened leaves no payment behind when
    the hold lapses. Answers the appointment and its fee in cents (None when free)."""
    await may_book(session, patient=patient, appointment_type=appointment_type)
    policy = await billing.current_policy(session, settings)
    paid = await billing.appointment_needs_payment(session, patient_id=patient.id, appointment_type=appointment_type, policy=policy)
    appointment = await scheduling.take_slot(
        session,
        patient=patient,
        clinician_id=clinician_id,
        appointment_type=appointment_type,
        starts_at=starts_at,
        hold=hold or paid,
        actor=actor,
        now=now,
        settings=settings,
        hold_for=billing.CHECKOUT_HOLD if paid else scheduling.HOLD_FOR,
    )
    return appointment, rules.fee_for(billing.PURPOSE_BY_APPOINTMENT[appointment_type], policy) if paid else None


async def book_follow_up(
    session: AsyncSession, *, therapist: UserAccount, patient: Patient, starts_at: datetime, actor: Actor, now: datetime, settings: Settings
) -> tuple[Appointment, Payment | None]:
    """A therapist books an integration session for one of their own patients, from their own hours; the
    patient's gates hold as for their own booking. It stays booked: once the program's included sessions are
    used, the patient finds it due on their billing page (billing.service.bill_follow_up). Answers the
    appointment and that payment (None when included). (The caller has checked the care team with
    `load_patient_for`.)"""
    if therapist.role != Role.THERAPIST.value:
        raise RuleRefused("booking.therapist_only", "Only therapists book integration follow-ups.")
    await may_book(session, patient=patient, appointment_type=AppointmentType.INTEGRATION)
    appointment = await scheduling.take_slot(
        session,
        patient=patient,
        clinician_id=therapist.id,
        appointment_type=AppointmentType.INTEGRATION,
        starts_at=starts_at,
        hold=False,
        actor=actor,
        now=now,
        settings=settings,
    )
    return appointment, await billing.bill_follow_up(session, appointment=appointment, now=now, settings=settings)
