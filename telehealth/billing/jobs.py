"""Billing work that leaves the process: refunds, off-session fees, closing Checkout Sessions, keeping the
card a patient agreed to keep. Each Stripe call carries an idempotency key from our row id, so a job that
is retried after a crash or a timeout never pays out or charges twice."""

from __future__ import annotations

import uuid
from typing import Any

from telehealth.billing.gateway import StripeGateway
from telehealth.billing.models import Payment, Refund, StripeCustomer
from telehealth.billing.service import (
    COLLECT_FEE_JOB,
    EXPIRE_CHECKOUT_JOB,
    SAVE_PAYMENT_METHOD_JOB,
    SEND_REFUND_JOB,
    email_patient,
    fail_refund,
    finish_refund,
    mark_paid,
)
from telehealth.billing.states import PaymentStatus, RefundStatus
from telehealth.db.engine import transaction
from telehealth.lib.errors import RuleRefused
from telehealth.outbox.worker import WorkerContext, job_handler


def gateway_for(context: WorkerContext) -> StripeGateway:
    gateway = context.services.get("stripe")
    if gateway is None:
        gateway = context.services["stripe"] = StripeGateway(context.settings)
    return gateway


@job_handler(SEND_REFUND_JOB)
async def send_refund(context: WorkerContext, payload: dict[str, Any]) -> None:
    now = context.clock.now()
    async with transaction(context.session_factory) as session:
        refund = await session.get(Refund, uuid.UUID(payload["refund_id"]), with_for_update=True)
        if refund is None or refund.status != RefundStatus.PENDING:
            return
        payment = await session.get(Payment, refund.payment_id)
        assert payment is not None and payment.stripe_payment_intent_id
        try:
            sent = await gateway_for(context).create_refund(
                refund_id=str(refund.id), payment_intent_id=payment.stripe_payment_intent_id, amount_cents=refund.amount_cents
            )
        except RuleRefused as refused:  # for good (e.g. already refunded at Stripe): put the balance back, show it
            await fail_refund(session, refund, now=now, code=str(refused.extra.get("stripe_code") or refused.code))
            return
        await finish_refund(session, refund, stripe_refund_id=str(sent["id"]), now=now)


@job_handler(COLLECT_FEE_JOB)
async def collect_fee(context: WorkerContext, payload: dict[str, Any]) -> None:
    now = context.clock.now()
    async with transaction(context.session_factory) as session:
        payment = await session.get(Payment, uuid.UUID(payload["payment_id"]), with_for_update=True)
        if payment is None or payment.status != PaymentStatus.OPEN:
            return
        customer = await session.get(StripeCustomer, payment.patient_id)
        if customer is not None and customer.payment_method_id:
            try:
                intent = await gateway_for(context).charge_saved_method(
                    payment_id=str(payment.id),
                    amount_cents=payment.amount_cents,
                    customer_id=customer.stripe_customer_id,
                    payment_method_id=customer.payment_method_id,
                )
            except RuleRefused as declined:
                payment.failure_code = str(declined.extra.get("decline_code") or declined.code)[:100]
                session.add(payment)
            else:
                if intent.get("status") == "succeeded":
                    await mark_paid(session, payment, payment_intent_id=str(intent["id"]), now=now, settings=context.settings)
                    return
        # No card on file (or it was declined): the fee waits on the billing page, and the patient hears so.
        await email_patient(
            session, payment.patient_id, "billing_payment_due", amount=payment.amount_cents, now=now, key=f"due:{payment.id}"
        )


@job_handler(EXPIRE_CHECKOUT_JOB)
async def expire_checkout(context: WorkerContext, payload: dict[str, Any]) -> None:
    await gateway_for(context).expire_checkout_session(str(payload["checkout_session_id"]))


@job_handler(SAVE_PAYMENT_METHOD_JOB)
async def save_payment_method(context: WorkerContext, payload: dict[str, Any]) -> None:
    """The patient agreed at checkout to keep the card for fees: remember which card that is."""
    now = context.clock.now()
    async with transaction(context.session_factory) as session:
        payment = await session.get(Payment, uuid.UUID(payload["payment_id"]))
        if payment is None or not payment.stripe_payment_intent_id:
            return
        intent = await gateway_for(context).retrieve_payment_intent(payment.stripe_payment_intent_id)
        method = intent.get("payment_method")
        customer = await session.get(StripeCustomer, payment.patient_id, with_for_update=True)
        if customer is not None and isinstance(method, str):
            customer.payment_method_id, customer.payment_method_saved_at = method, now
            session.add(customer)
