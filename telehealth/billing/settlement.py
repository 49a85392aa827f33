"""What money does when an appointment changes: the quote a patient reads before cancelling, the refund or
fee after, the no-show fee, and the refunds other areas trigger (ineligible at the consult, a program that
stops). Scheduling and prescribing call these; the rules live in `policy.py`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.billing import policy as rules
from telehealth.billing.models import Payment
from telehealth.billing.service import (
    PURPOSE_BY_APPOINTMENT,
    appointment_needs_payment,
    charge_fee,
    current_policy,
    release_payment,
    request_refund,
)
from telehealth.billing.states import PaymentPurpose, PaymentStatus
from telehealth.lib.actors import Actor
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.states import AppointmentStatus, AppointmentType
from telehealth.settings import Settings

APPOINTMENT_PURPOSES = (PaymentPurpose.CONSULT, PaymentPurpose.INTEGRATION)


@dataclass(frozen=True)
class CancellationQuote:
    refund_cents: int  # back to the patient
    fee_cents: int  # charged or kept
    late: bool  # the patient must accept before going ahead
    sentence: str


async def _appointment_payment(session: AsyncSession, appointment_id: uuid.UUID) -> Payment | None:
    return (
        await session.execute(
            select(Payment)
            .where(
                Payment.appointment_id == appointment_id,
                col(Payment.purpose).in_([p.value for p in APPOINTMENT_PURPOSES]),
                col(Payment.status).in_([PaymentStatus.OPEN, PaymentStatus.PAID, PaymentStatus.REFUNDED]),
            )
            .order_by(col(Payment.created_at).desc())
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def _late_fee_taken(session: AsyncSession, appointment_id: uuid.UUID) -> bool:
    """A late reschedule already charged the fee for this appointment: a late cancel does not take it again."""
    found = await session.scalar(
        select(Payment.id).where(
            Payment.appointment_id == appointment_id,
            Payment.purpose == PaymentPurpose.LATE_CANCEL_FEE,
            col(Payment.status).in_([PaymentStatus.OPEN, PaymentStatus.PAID]),
        )
    )
    return found is not None


async def booking_terms(
    session: AsyncSession, *, patient_id: uuid.UUID, appointment_type: AppointmentType, settings: Settings
) -> rules.BookingTerms:
    """What booking this kind of appointment would cost this patient now, and what cancelling it would: read
    from the clinic's current policy, by the same rule booking charges by (an integration session is included
    while the patient's paid programs still cover one)."""
    policy = await current_policy(session, settings)
    charged = await appointment_needs_payment(session, patient_id=patient_id, appointment_type=appointment_type, policy=policy)
    return rules.booking_terms(PURPOSE_BY_APPOINTMENT.get(appointment_type), policy, charged=charged)


async def cancellation_quote(
    session: AsyncSession, appointment: Appointment, *, by_patient: bool, now: datetime, settings: Settings
) -> CancellationQuote:
    """What cancelling (or moving) now would cost, in the words the patient reads before confirming."""
    policy = await current_policy(session, settings)
    late = (
        by_patient
        and appointment.status == AppointmentStatus.BOOKED
        and (appointment.starts_at - now).total_seconds() < policy.free_cancel_hours * 3600
    )
    payment = await _appointment_payment(session, appointment.id)
    if payment is not None and payment.status in (PaymentStatus.PAID, PaymentStatus.REFUNDED):
        decision = rules.appointment_cancellation(
            payment.amount_cents - payment.refunded_cents,
            by_patient=by_patient,
            starts_at=appointment.starts_at,
            cancelled_at=now,
            policy=policy,
            late_fee_taken=await _late_fee_taken(session, appointment.id),
        )
        return CancellationQuote(
            decision.amount_cents, decision.kept_cents, late and decision.kept_cents > 0, decision.sentence
        )  # nothing kept: nothing to accept
    if appointment.status == AppointmentStatus.HELD or not late:
        return CancellationQuote(0, 0, False, "Nothing is charged for this change.")
    fee = policy.late_cancel_fee_cents
    return CancellationQuote(
        0,
        fee,
        fee > 0,
        f"This is less than {policy.free_cancel_hours} hours before the start: "
        f"the late-cancellation fee of {rules.dollars(fee)} will be charged.",
    )


async def settle_cancellation(
    session: AsyncSession, appointment: Appointment, *, was: str, by_patient: bool, actor: Actor, now: datetime, settings: Settings
) -> None:
    """After the appointment was cancelled (it was `was`): refund by policy, release an unpaid checkout, or
    charge the late fee for a session the program included."""
    policy = await current_policy(session, settings)
    payment = await _appointment_payment(session, appointment.id)
    if payment is not None and payment.status == PaymentStatus.OPEN:
        await release_payment(session, payment, target=PaymentStatus.CANCELLED, now=now)
        return
    if payment is not None:
        decision = rules.appointment_cancellation(
            payment.amount_cents - payment.refunded_cents,
            by_patient=by_patient,
            starts_at=appointment.starts_at,
            cancelled_at=now,
            policy=policy,
            late_fee_taken=await _late_fee_taken(session, appointment.id),
        )
        await request_refund(session, payment, amount_cents=decision.amount_cents, reason=decision.reason, actor=actor, now=now)
        return
    late = (
        by_patient and was == AppointmentStatus.BOOKED and (appointment.starts_at - now).total_seconds() < policy.free_cancel_hours * 3600
    )
    if late:
        await charge_fee(
            session,
            patient_id=appointment.patient_id,
            purpose=PaymentPurpose.LATE_CANCEL_FEE,
            appointment_id=appointment.id,
            now=now,
            settings=settings,
        )


async def settle_no_show(session: AsyncSession, appointment: Appointment, *, now: datetime, settings: Settings) -> None:
    """A missed appointment that was paid keeps its payment; a missed included session costs the no-show fee."""
    if await _appointment_payment(session, appointment.id) is None:
        await charge_fee(
            session,
            patient_id=appointment.patient_id,
            purpose=PaymentPurpose.NO_SHOW_FEE,
            appointment_id=appointment.id,
            now=now,
            settings=settings,
        )


async def refund_consult_for_ineligibility(session: AsyncSession, *, appointment_id: uuid.UUID, actor: Actor, now: datetime) -> int:
    """The prescriber found the patient ineligible at the consult: the consult is refunded in full."""
    payment = await _appointment_payment(session, appointment_id)
    if payment is None or payment.status != PaymentStatus.PAID:
        return 0
    decision = rules.ineligible(payment.amount_cents - payment.refunded_cents)
    refund = await request_refund(session, payment, amount_cents=decision.amount_cents, reason=decision.reason, actor=actor, now=now)
    return refund.amount_cents if refund else 0


async def refund_program(
    session: AsyncSession, *, plan_id: uuid.UUID, shipments_sent: int, actor: Actor, now: datetime, settings: Settings
) -> int:
    """A program that stops: refunded by how many shipments have left the pharmacy."""
    payment = (
        await session.execute(
            select(Payment)
            .where(Payment.plan_id == plan_id, Payment.purpose == PaymentPurpose.PROGRAM, Payment.status == PaymentStatus.PAID)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if payment is None:
        return 0
    decision = rules.program_cancellation(
        payment.amount_cents, shipments_sent=shipments_sent, policy=await current_policy(session, settings)
    )
    amount = min(decision.amount_cents, payment.amount_cents - payment.refunded_cents)
    refund = await request_refund(session, payment, amount_cents=amount, reason=decision.reason, actor=actor, now=now)
    return refund.amount_cents if refund else 0


async def reschedule_quote(
    session: AsyncSession, appointment: Appointment, *, by_patient: bool, now: datetime, settings: Settings
) -> CancellationQuote:
    policy = await current_policy(session, settings)
    late = (
        by_patient
        and appointment.status == AppointmentStatus.BOOKED
        and (appointment.starts_at - now).total_seconds() < policy.free_cancel_hours * 3600
    )
    if not late or policy.late_cancel_fee_cents == 0:
        return CancellationQuote(0, 0, False, "Nothing is charged for this change.")
    fee = policy.late_cancel_fee_cents
    return CancellationQuote(
        0,
        fee,
        True,
        f"Moving it less than {policy.free_cancel_hours} hours before the start costs the late-change fee of {rules.dollars(fee)}.",
    )


async def settle_reschedule(
    session: AsyncSession, appointment: Appointment, *, quote: CancellationQuote, now: datetime, settings: Settings
) -> None:
    if quote.late and quote.fee_cents > 0:
        await charge_fee(
            session,
            patient_id=appointment.patient_id,
            purpose=PaymentPurpose.LATE_CANCEL_FEE,
            appointment_id=appointment.id,
            now=now,
            settings=settings,
        )
