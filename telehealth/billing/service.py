"""Billing rules: the clinic's policy, payments and their Checkout Sessions, what becomes paid (only on
Stripe's signed word), refunds and fees, and the ledger.

Calls to Stripe that the patient waits for (making a Checkout Session) happen inside the request's
transaction, before commit: the session's URL reaches the patient only after commit, so a session whose
row rolled back can never be paid and simply expires. Everything else that leaves the process (refunds,
off-session fees, expiring sessions) goes through the outbox with idempotency keys.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient
from telehealth.accounts.service import patient_contact
from telehealth.audit.service import change_status, record_audit_event
from telehealth.billing import policy as rules
from telehealth.billing.gateway import StripeGateway
from telehealth.billing.models import BillingPolicy, LedgerEntry, Payment, Refund, StripeCustomer
from telehealth.billing.states import (
    PAYMENT_TRANSITIONS,
    REFUND_TRANSITIONS,
    STRIPE_PRODUCT_NAMES,
    PaymentPurpose,
    PaymentStatus,
    RefundStatus,
)
from telehealth.care_teams import service as care_teams
from telehealth.db import driver
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, NotFound, RuleRefused
from telehealth.notifications.service import queue_email
from telehealth.outbox.service import enqueue_job
from telehealth.scheduling import service as scheduling
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.states import AppointmentStatus, AppointmentType
from telehealth.settings import Settings

CHECKOUT_HOLD = timedelta(minutes=30)  # Stripe Checkout's shortest allowed expiry; a paid hold lasts this long
# From the booking: room for a second Checkout Session when the first runs out, never more, so asking to pay
# again and again cannot keep a time from everyone else.
MAX_PAID_HOLD = timedelta(hours=1)
STANDALONE_CHECKOUT_VALID = timedelta(hours=23)  # Checkout allows at most 24 h
SEND_REFUND_JOB, COLLECT_FEE_JOB = "billing.send_refund", "billing.collect_fee"
EXPIRE_CHECKOUT_JOB, SAVE_PAYMENT_METHOD_JOB = "billing.expire_checkout", "billing.save_payment_method"
POLICY_FIELDS = (
    "consult_fee_cents",
    "program_fee_cents",
    "integration_fee_cents",
    "late_cancel_fee_cents",
    "no_show_fee_cents",
    "free_cancel_hours",
    "program_refund_percent_after_first_shipment",
    "program_refund_percent_after_second_shipment",
    "included_integration_sessions",
)
PURPOSE_BY_APPOINTMENT = {AppointmentType.CONSULT: PaymentPurpose.CONSULT, AppointmentType.INTEGRATION: PaymentPurpose.INTEGRATION}


# Every booking and fee reads the policy: on the driver (db/driver.py).
_POLICY = f"SELECT {driver.columns_of(BillingPolicy)} FROM billing_policy WHERE id = 1"


async def current_policy(session: AsyncSession, settings: Settings) -> BillingPolicy:
    """The clinic's policy as it is now, to read (an object of no session: update_policy changes the row); made
    from the settings' defaults the first time it is read."""
    found = await driver.fetchrow(session, _POLICY)
    if found is not None:
        return driver.built(BillingPolicy, found)
    defaults = {
        "consult_fee_cents": settings.consult_fee_cents,
        "program_fee_cents": settings.program_fee_cents,
        "integration_fee_cents": settings.integration_fee_cents,
        "late_cancel_fee_cents": settings.late_cancel_fee_cents,
        "no_show_fee_cents": settings.no_show_fee_cents,
        "free_cancel_hours": 24,
        "program_refund_percent_after_first_shipment": 50,
        "program_refund_percent_after_second_shipment": 0,
        "included_integration_sessions": 1,
    }
    await session.execute(insert(BillingPolicy).values(id=1, updated_at=func.now(), **defaults).on_conflict_do_nothing())
    made = await driver.fetchrow(session, _POLICY)
    assert made is not None
    return driver.built(BillingPolicy, made)


async def update_policy(session: AsyncSession, *, values: dict[str, int], actor: Actor, now: datetime, settings: Settings) -> BillingPolicy:
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidInput("request.invalid", "Unknown policy fields.", fields=dict.fromkeys(unknown, "is not a policy field"))
    for name in ("program_refund_percent_after_first_shipment", "program_refund_percent_after_second_shipment"):
        if name in values and not 0 <= values[name] <= 100:
            raise InvalidInput("request.invalid", "Percentages run from 0 to 100.", fields={name: "must be between 0 and 100"})
    for name, value in values.items():
        if value < 0 or (name.endswith("_fee_cents") and name.split("_")[0] in ("consult", "program", "integration") and value == 0):
            raise InvalidInput("request.invalid", "Fees are positive whole cents.", fields={name: "must be a positive number of cents"})
    await current_policy(session, settings)  # the row, made from the defaults if it was never read
    await session.execute(
        update(BillingPolicy)
        .where(col(BillingPolicy.id) == 1)
        .values(**values, updated_at=now, updated_by=actor.user_id)
        .execution_options(synchronize_session=False)
    )
    for name, value in sorted(values.items()):  # one event per field: the audit reason holds at most 80 characters
        await record_audit_event(
            session,
            actor=actor,
            action="billing_policy.update",
            resource_type="billing_policy",
            resource_id=1,
            now=now,
            reason=f"{name}={value}",
        )
    return await current_policy(session, settings)


async def _included_integration_sessions(session: AsyncSession, *, patient_id: uuid.UUID, policy: BillingPolicy) -> tuple[int, int]:
    """(included sessions booked or held so far, how many the patient's paid programs include)."""
    programs = await session.scalar(
        select(func.count())
        .select_from(Payment)
        .where(Payment.patient_id == patient_id, Payment.purpose == PaymentPurpose.PROGRAM, Payment.status == PaymentStatus.PAID)
    )
    paid_separately = select(Payment.appointment_id).where(
        col(Payment.appointment_id).is_not(None), col(Payment.status).in_([PaymentStatus.OPEN, PaymentStatus.PAID])
    )
    used = await session.scalar(
        select(func.count())
        .select_from(Appointment)
        .where(
            Appointment.patient_id == patient_id,
            Appointment.appointment_type == AppointmentType.INTEGRATION,
            col(Appointment.status).in_([AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW]),
            col(Appointment.id).not_in(paid_separately),
        )
    )
    return used or 0, (programs or 0) * policy.included_integration_sessions


async def appointment_needs_payment(
    session: AsyncSession, *, patient_id: uuid.UUID, appointment_type: AppointmentType, policy: BillingPolicy
) -> bool:
    """Consults are paid; reassessments belong to the plan; integration sessions are paid once the ones
    included with each paid program are used."""
    if appointment_type is AppointmentType.CONSULT:
        return True
    if appointment_type is not AppointmentType.INTEGRATION:
        return False
    used, allowance = await _included_integration_sessions(session, patient_id=patient_id, policy=policy)
    return used >= allowance


async def open_payment(
    session: AsyncSession,
    *,
    patient_id: uuid.UUID,
    purpose: PaymentPurpose,
    amount_cents: int,
    now: datetime,
    appointment_id: uuid.UUID | None = None,
    plan_id: uuid.UUID | None = None,
    save_payment_method: bool = False,
) -> Payment:
    """The live payment for this appointment (or plan) and purpose, made if there is none. Two concurrent
    callers get the same row: the unique index makes the second INSERT wait and then do nothing."""
    await session.execute(
        insert(Payment)
        .values(
            id=uuid.uuid4(),
            patient_id=patient_id,
            purpose=purpose.value,
            status=PaymentStatus.OPEN.value,
            amount_cents=amount_cents,
            refunded_cents=0,
            currency="usd",
            appointment_id=appointment_id,
            plan_id=plan_id,
            save_payment_method=save_payment_method,
            checkout_attempts=0,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    key = Payment.appointment_id == appointment_id if appointment_id is not None else Payment.plan_id == plan_id
    if appointment_id is None and plan_id is None:
        raise ValueError("a payment belongs to an appointment or a plan")
    payment = (
        await session.execute(
            select(Payment)
            .where(key, Payment.purpose == purpose.value, col(Payment.status).in_([PaymentStatus.OPEN, PaymentStatus.PAID]))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return payment


async def _stripe_customer(session: AsyncSession, gateway: StripeGateway, *, patient_id: uuid.UUID) -> StripeCustomer:
    found = await session.get(StripeCustomer, patient_id)
    if found is not None:
        return found
    customer_id = await gateway.create_customer(patient_ref=str(patient_id))  # idempotent per patient
    await session.execute(insert(StripeCustomer).values(patient_id=patient_id, stripe_customer_id=customer_id).on_conflict_do_nothing())
    found = await session.get(StripeCustomer, patient_id)
    assert found is not None
    return found


async def checkout(
    session: AsyncSession, gateway: StripeGateway, *, payment: Payment, now: datetime, settings: Settings, expires_at: datetime
) -> Payment:
    """A Checkout Session for an open payment (locked by the caller); the same one again while it is live."""
    if payment.status != PaymentStatus.OPEN:
        raise Conflict("payment.not_open", "This payment is already settled.")
    if _session_live(payment, now):
        return payment  # a second click finds the first click's session
    customer = await _stripe_customer(session, gateway, patient_id=payment.patient_id)
    attempt = payment.checkout_attempts + 1
    created = await gateway.create_checkout_session(
        payment_id=str(payment.id),
        purpose=PaymentPurpose(payment.purpose),
        amount_cents=payment.amount_cents,
        customer_id=customer.stripe_customer_id,
        attempt=attempt,
        expires_at=expires_at,
        success_url=f"{settings.public_base_url}/billing/return?payment={payment.id}",
        cancel_url=f"{settings.public_base_url}/billing/payments/{payment.id}/pay",
        save_payment_method=payment.save_payment_method,
    )
    if payment.stripe_checkout_session_id and payment.checkout_expires_at and payment.checkout_expires_at > now:
        # Only the stored session settles the payment (billing/events.py): close the one this replaces, in
        # its last minute, so it cannot be paid and then refused.
        await enqueue_job(
            session,
            kind=EXPIRE_CHECKOUT_JOB,
            payload={"checkout_session_id": payment.stripe_checkout_session_id},
            now=now,
            dedupe_key=f"expire:{payment.stripe_checkout_session_id}",
        )
    payment.checkout_attempts = attempt
    payment.stripe_checkout_session_id = created.id
    payment.checkout_url = created.url
    payment.checkout_expires_at = created.expires_at
    session.add(payment)
    await session.flush()
    return payment


def _session_live(payment: Payment, now: datetime) -> bool:
    return bool(payment.checkout_url and payment.checkout_expires_at and payment.checkout_expires_at > now + timedelta(minutes=1))


async def checkout_for_held_appointment(
    session: AsyncSession,
    gateway: StripeGateway,
    *,
    appointment_id: uuid.UUID,
    patient: Patient,
    now: datetime,
    settings: Settings,
    save_payment_method: bool = False,
) -> Payment:
    """Pay for a held appointment: the hold lasts as long as the Checkout Session (at least 30 minutes), and
    a new session (the last ran out) extends it only up to MAX_PAID_HOLD from the booking."""
    appointment = await session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None or appointment.patient_id != patient.id:
        raise NotFound("appointment.not_found", "No appointment with this id is yours.")
    if appointment.status != AppointmentStatus.HELD or (appointment.hold_expires_at and appointment.hold_expires_at <= now):
        raise Conflict("payment.hold_lapsed", "This time is no longer held for you. Please choose a time again.")
    purpose = PURPOSE_BY_APPOINTMENT.get(AppointmentType(appointment.appointment_type))
    if purpose is None:
        raise RuleRefused("payment.not_needed", "This appointment is part of your program; there is nothing to pay.")
    policy = await current_policy(session, settings)
    payment = await open_payment(
        session,
        patient_id=patient.id,
        purpose=purpose,
        amount_cents=rules.fee_for(purpose, policy),
        now=now,
        appointment_id=appointment.id,
        save_payment_method=save_payment_method,
    )
    if payment.status == PaymentStatus.PAID:
        raise Conflict("payment.already_paid", "This appointment is already paid.")
    if _session_live(payment, now):
        return payment  # the hold already ends with this session: asking again extends nothing
    expires_at = max(appointment.hold_expires_at or now, now + CHECKOUT_HOLD)
    if expires_at > appointment.created_at + MAX_PAID_HOLD:
        raise Conflict("payment.hold_lapsed", "This time has been held for you for as long as we can. Please choose a time again.")
    if expires_at != appointment.hold_expires_at:
        appointment.hold_expires_at = expires_at
        session.add(appointment)
    return await checkout(session, gateway, payment=payment, now=now, settings=settings, expires_at=expires_at)


async def checkout_for_payment(
    session: AsyncSession, gateway: StripeGateway, *, payment_id: uuid.UUID, patient: Patient, now: datetime, settings: Settings
) -> Payment:
    """Pay an amount due (a program fee, a fee, a session booked by a therapist) from the billing page."""
    payment = await session.get(Payment, payment_id, with_for_update=True)
    if payment is None or payment.patient_id != patient.id:
        raise NotFound("payment.not_found", "No payment with this id is yours.")
    if payment.appointment_id is not None:
        appointment = await session.get(Appointment, payment.appointment_id)
        if appointment is not None and appointment.status == AppointmentStatus.HELD:
            return await checkout_for_held_appointment(
                session, gateway, appointment_id=appointment.id, patient=patient, now=now, settings=settings
            )
    return await checkout(session, gateway, payment=payment, now=now, settings=settings, expires_at=now + STANDALONE_CHECKOUT_VALID)


async def payment_due(
    session: AsyncSession,
    *,
    patient_id: uuid.UUID,
    purpose: PaymentPurpose,
    now: datetime,
    settings: Settings,
    appointment_id: uuid.UUID | None = None,
    plan_id: uuid.UUID | None = None,
    tell: bool = True,
) -> Payment:
    """An amount the patient pays later from the billing page (a program fee when a plan is signed, a session
    a therapist booked); the email says only that a payment is due."""
    policy = await current_policy(session, settings)
    payment = await open_payment(
        session,
        patient_id=patient_id,
        purpose=purpose,
        amount_cents=rules.fee_for(purpose, policy),
        now=now,
        appointment_id=appointment_id,
        plan_id=plan_id,
    )
    if tell and payment.status == PaymentStatus.OPEN:
        await email_patient(session, patient_id, "billing_payment_due", amount=payment.amount_cents, now=now, key=f"due:{payment.id}")
    return payment


async def charge_fee(
    session: AsyncSession, *, patient_id: uuid.UUID, purpose: PaymentPurpose, appointment_id: uuid.UUID, now: datetime, settings: Settings
) -> Payment | None:
    """A late-cancellation or no-show fee: charged to the card kept on file with the patient's consent, or
    left due on the billing page. Answers None when the policy's fee is zero."""
    policy = await current_policy(session, settings)
    amount = rules.fee_for(purpose, policy)
    if amount <= 0:
        return None
    payment = await open_payment(
        session, patient_id=patient_id, purpose=purpose, amount_cents=amount, now=now, appointment_id=appointment_id
    )
    await enqueue_job(session, kind=COLLECT_FEE_JOB, payload={"payment_id": str(payment.id)}, now=now, dedupe_key=f"fee:{payment.id}")
    return payment


async def mark_paid(session: AsyncSession, payment: Payment, *, payment_intent_id: str | None, now: datetime, settings: Settings) -> bool:
    """Stripe says the money arrived (payment locked by the caller). Answers False if it was already paid.
    A held appointment becomes booked; one whose hold lapsed first is refunded in full."""
    if payment_intent_id and not payment.stripe_payment_intent_id:
        await driver.execute(session, _STORE_PAYMENT_INTENT, payment_intent_id, payment.id)
        driver.stored(payment, stripe_payment_intent_id=payment_intent_id)
    if payment.status in (PaymentStatus.PAID, PaymentStatus.REFUNDED):
        return False
    let_go = payment.status in (PaymentStatus.CANCELLED, PaymentStatus.EXPIRED)
    await change_status(
        session,
        Payment,
        payment.id,
        table=PAYMENT_TRANSITIONS,
        source=payment.status,
        target=PaymentStatus.PAID,
        actor=Actor.system(),
        now=now,
        patient_id=payment.patient_id,
        values={"paid_at": now, "failure_code": None},
    )
    await driver.refresh(session, payment)
    await _ledger(
        session,
        payment=payment,
        kind="charge",
        amount_cents=payment.amount_cents,
        label=STRIPE_PRODUCT_NAMES[PaymentPurpose(payment.purpose)],
        now=now,
    )
    if payment.save_payment_method:
        await enqueue_job(
            session, kind=SAVE_PAYMENT_METHOD_JOB, payload={"payment_id": str(payment.id)}, now=now, dedupe_key=f"save-pm:{payment.id}"
        )
    if let_go and (payment.appointment_id is None or payment.purpose not in (PaymentPurpose.CONSULT, PaymentPurpose.INTEGRATION)):
        # Paid for something we had already called off (a fee or program fee cancelled meanwhile): all of it goes back.
        await request_refund(session, payment, amount_cents=payment.amount_cents, reason="paid_after_cancel", actor=Actor.system(), now=now)
        return True
    if payment.appointment_id is None or payment.purpose not in (PaymentPurpose.CONSULT, PaymentPurpose.INTEGRATION):
        await email_patient(
            session, payment.patient_id, "billing_payment_received", amount=payment.amount_cents, now=now, key=f"paid:{payment.id}"
        )
        return True
    await _confirm_appointment(session, payment, now=now, settings=settings)
    return True


async def _confirm_appointment(session: AsyncSession, payment: Payment, *, now: datetime, settings: Settings) -> None:
    from telehealth.scheduling.notices import tell_patient
    from telehealth.scheduling.states import APPOINTMENT_TRANSITIONS

    appointment = await driver.load(session, Appointment, payment.appointment_id, for_update=True)
    assert appointment is not None
    if appointment.status == AppointmentStatus.HELD:
        # Still held (even a little past its expiry): nobody else can have its time, the constraint saw to that.
        await change_status(
            session,
            Appointment,
            appointment.id,
            table=APPOINTMENT_TRANSITIONS,
            source=AppointmentStatus.HELD,
            target=AppointmentStatus.BOOKED,
            actor=Actor.system(),
            now=now,
            patient_id=appointment.patient_id,
            values={"hold_expires_at": None},
        )
        await driver.refresh(session, appointment)
        await care_teams.join(
            session,
            patient_id=appointment.patient_id,
            clinician_id=appointment.clinician_id,
            because=scheduling.care_team_reason(appointment),
            now=now,
        )
        await tell_patient(session, appointment, now=now, settings=settings)
    elif appointment.status in (AppointmentStatus.EXPIRED, AppointmentStatus.CANCELLED):
        await request_refund(session, payment, amount_cents=payment.amount_cents, reason="hold_lapsed", actor=Actor.system(), now=now)
        await email_patient(
            session, payment.patient_id, "billing_time_released", amount=payment.amount_cents, now=now, key=f"released:{payment.id}"
        )


async def release_payment(session: AsyncSession, payment: Payment, *, target: PaymentStatus, now: datetime) -> None:
    """An open payment that will not be paid (Checkout expired, the hold was let go): its session is closed."""
    if payment.status != PaymentStatus.OPEN:
        return
    await change_status(
        session,
        Payment,
        payment.id,
        table=PAYMENT_TRANSITIONS,
        source=PaymentStatus.OPEN,
        target=target,
        actor=Actor.system(),
        now=now,
        patient_id=payment.patient_id,
    )
    if payment.stripe_checkout_session_id and target is PaymentStatus.CANCELLED:
        await enqueue_job(
            session,
            kind=EXPIRE_CHECKOUT_JOB,
            payload={"checkout_session_id": payment.stripe_checkout_session_id},
            now=now,
            dedupe_key=f"expire:{payment.stripe_checkout_session_id}",
        )


# A refund's two writes, on the driver (db/driver.py): the row (once per payment and policy reason, by the unique
# index), then the amount reserved on the payment only while what is left covers it.
_NEW_REFUND = (
    "INSERT INTO refund (id, payment_id, amount_cents, reason, note, status, requested_by, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id"
)
_RESERVE_REFUND = (
    "UPDATE payment SET refunded_cents = refunded_cents + $2"
    f" WHERE id = $1 AND status = '{PaymentStatus.PAID.value}' AND refunded_cents + $2 <= amount_cents RETURNING refunded_cents"
)


async def request_refund(
    session: AsyncSession,
    payment: Payment,
    *,
    amount_cents: int,
    reason: str,
    actor: Actor,
    now: datetime,
    note: str | None = None,
    send: bool = True,
) -> Refund | None:
    """Reserve `amount_cents` of what is left on a paid payment and queue the refund to Stripe. A policy
    refund happens once per payment and reason (None if it already did); nothing beyond the balance."""
    if amount_cents <= 0:
        return None
    refund_id = uuid.uuid4()
    inserted = await driver.fetchval(
        session, _NEW_REFUND, refund_id, payment.id, amount_cents, reason, note, RefundStatus.PENDING.value, actor.user_id, driver.utc(now)
    )
    if inserted is None:
        return None
    if await driver.fetchval(session, _RESERVE_REFUND, payment.id, amount_cents) is None:
        await driver.refresh(session, payment)
        left = payment.amount_cents - payment.refunded_cents if payment.status == PaymentStatus.PAID else 0
        raise RuleRefused(
            "refund.exceeds_balance",
            f"At most {rules.dollars(left)} of this payment can still be refunded.",
            fields={"amount_cents": f"must be at most {left}"},
        )
    await driver.refresh(session, payment)
    if payment.refunded_cents == payment.amount_cents:
        await change_status(
            session,
            Payment,
            payment.id,
            table=PAYMENT_TRANSITIONS,
            source=PaymentStatus.PAID,
            target=PaymentStatus.REFUNDED,
            actor=actor,
            now=now,
            patient_id=payment.patient_id,
        )
        await driver.refresh(session, payment)
    # The audit reason is a short machine code; a coordinator's free-text note stays on the refund row it names.
    await record_audit_event(
        session,
        actor=actor,
        action=f"refund.request.{reason}",
        resource_type="refund",
        resource_id=refund_id,
        patient_id=payment.patient_id,
        now=now,
    )
    if send:
        await enqueue_job(session, kind=SEND_REFUND_JOB, payload={"refund_id": str(refund_id)}, now=now, dedupe_key=f"refund:{refund_id}")
    return await driver.load(session, Refund, refund_id)


async def finish_refund(session: AsyncSession, refund: Refund, *, stripe_refund_id: str | None, now: datetime) -> None:
    """Stripe took the refund: it goes on the statement and the patient hears (amount only)."""
    if refund.status != RefundStatus.PENDING:
        return
    await change_status(
        session,
        Refund,
        refund.id,
        table=REFUND_TRANSITIONS,
        source=RefundStatus.PENDING,
        target=RefundStatus.SUCCEEDED,
        actor=Actor.system(),
        now=now,
        values={"completed_at": now, "stripe_refund_id": stripe_refund_id},
    )
    payment = await session.get(Payment, refund.payment_id)
    assert payment is not None
    await _ledger(session, payment=payment, kind="refund", amount_cents=-refund.amount_cents, label="Refund", now=now, refund_id=refund.id)
    await email_patient(
        session, payment.patient_id, "billing_refund_issued", amount=refund.amount_cents, now=now, key=f"refunded:{refund.id}"
    )


async def fail_refund(session: AsyncSession, refund: Refund, *, now: datetime, code: str) -> None:
    """Stripe refused the refund for good: the money it reserved is on the payment's balance again, and the
    coordinator sees the failed refund."""
    if refund.status != RefundStatus.PENDING:
        return
    await change_status(
        session,
        Refund,
        refund.id,
        table=REFUND_TRANSITIONS,
        source=RefundStatus.PENDING,
        target=RefundStatus.FAILED,
        actor=Actor.system(),
        now=now,
        values={"completed_at": now, "note": (refund.note or code)[:500]},
    )
    payment = await session.get(Payment, refund.payment_id, with_for_update=True)
    assert payment is not None
    if payment.status == PaymentStatus.REFUNDED:
        await change_status(
            session,
            Payment,
            payment.id,
            table=PAYMENT_TRANSITIONS,
            source=PaymentStatus.REFUNDED,
            target=PaymentStatus.PAID,
            actor=Actor.system(),
            now=now,
            patient_id=payment.patient_id,
        )
    await session.execute(
        update(Payment)
        .where(col(Payment.id) == payment.id)
        .values(refunded_cents=Payment.refunded_cents - refund.amount_cents)
        .execution_options(synchronize_session=False)
    )


async def record_dispute(session: AsyncSession, payment: Payment, *, amount_cents: int, now: datetime) -> None:
    await _ledger(session, payment=payment, kind="dispute", amount_cents=-amount_cents, label="Disputed with your bank", now=now)


async def manual_refund(
    session: AsyncSession, *, payment_id: uuid.UUID, amount_cents: int, note: str, actor: Actor, now: datetime
) -> Refund:
    """A coordinator's refund, with the reason they give (kept on the refund, which the audit trail names; never sent to Stripe)."""
    if not note.strip():
        raise InvalidInput("request.invalid", "Say why you are refunding.", fields={"reason": "is required"})
    if amount_cents <= 0:
        raise InvalidInput("request.invalid", "Refund a positive amount.", fields={"amount_cents": "must be a positive number of cents"})
    payment = await session.get(Payment, payment_id, with_for_update=True)
    if payment is None:
        raise NotFound("payment.not_found", "No payment with this id.")
    if payment.status == PaymentStatus.REFUNDED:  # fully refunded: the amount asked for is over what is left ($0.00)
        raise RuleRefused(
            "refund.exceeds_balance", "Nothing of this payment is left to refund.", fields={"amount_cents": "must be at most 0"}
        )
    if payment.status != PaymentStatus.PAID:
        raise RuleRefused("refund.not_paid", "Only a paid payment with money left on it can be refunded.")
    refund = await request_refund(session, payment, amount_cents=amount_cents, reason="manual", actor=actor, now=now, note=note.strip())
    assert refund is not None
    return refund


# Every payment's statements, on the driver (db/driver.py): the intent Stripe made for it, and its ledger lines.
_STORE_PAYMENT_INTENT = "UPDATE payment SET stripe_payment_intent_id = $1 WHERE id = $2"
_LEDGER_LINE = (
    "INSERT INTO ledger_entry (id, patient_id, payment_id, refund_id, kind, amount_cents, label, occurred_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
)


async def _ledger(
    session: AsyncSession, *, payment: Payment, kind: str, amount_cents: int, label: str, now: datetime, refund_id: uuid.UUID | None = None
) -> None:
    """One line on the statement; the unique indexes keep each charge, refund and dispute to one line."""
    await driver.execute(
        session, _LEDGER_LINE, uuid.uuid4(), payment.patient_id, payment.id, refund_id, kind, amount_cents, label, driver.utc(now)
    )


async def email_patient(session: AsyncSession, patient_id: uuid.UUID, template: str, *, amount: int, now: datetime, key: str) -> None:
    contact = await patient_contact(session, patient_id)
    await queue_email(
        session,
        to=contact.email,
        template=template,
        context={"recipient_name": contact.full_name, "amount": rules.dollars(amount)},
        now=now,
        dedupe_key=key,
    )


async def ledger_for(session: AsyncSession, *, patient_id: uuid.UUID) -> list[LedgerEntry]:
    rows = await session.execute(
        select(LedgerEntry).where(LedgerEntry.patient_id == patient_id).order_by(col(LedgerEntry.occurred_at), LedgerEntry.kind)
    )
    return list(rows.scalars())


async def payments_for(session: AsyncSession, *, patient_id: uuid.UUID) -> list[Payment]:
    rows = await session.execute(select(Payment).where(Payment.patient_id == patient_id).order_by(col(Payment.created_at).desc()))
    return list(rows.scalars())


async def daily_totals(session: AsyncSession, *, since: datetime, zone: str) -> list[dict[str, Any]]:
    """Per clinic-local day: charged, refunded and disputed cents."""
    day = func.date(func.timezone(zone, LedgerEntry.occurred_at))
    rows = await session.execute(
        select(day.label("day"), LedgerEntry.kind, func.sum(LedgerEntry.amount_cents), func.count())
        .where(LedgerEntry.occurred_at >= since)
        .group_by(day, LedgerEntry.kind)
        .order_by(day.desc())
    )
    totals: dict[Any, dict[str, Any]] = {}
    for on, kind, cents, count in rows.all():
        entry = totals.setdefault(on, {"day": on, "charge": 0, "refund": 0, "dispute": 0, "count": 0})
        entry[kind] = int(cents)
        entry["count"] += int(count)
    return list(totals.values())


async def disputed_payments(session: AsyncSession) -> list[Payment]:
    rows = await session.execute(select(Payment).where(col(Payment.disputed_at).is_not(None)).order_by(col(Payment.disputed_at).desc()))
    return list(rows.scalars())


async def bill_follow_up(session: AsyncSession, *, appointment: Appointment, now: datetime, settings: Settings) -> Payment | None:
    """A session a therapist booked stays booked; if the program's included sessions are used up, the patient
    finds it due on their billing page (and hears that a payment is due, nothing more)."""
    policy = await current_policy(session, settings)
    used, allowance = await _included_integration_sessions(session, patient_id=appointment.patient_id, policy=policy)
    if used <= allowance:
        return None  # this one is among the included sessions
    return await payment_due(
        session,
        patient_id=appointment.patient_id,
        purpose=PaymentPurpose.INTEGRATION,
        now=now,
        settings=settings,
        appointment_id=appointment.id,
    )
