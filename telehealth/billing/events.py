"""Stripe's webhooks: verified on the raw body, each event acted on exactly once, in any order.

The event's id is stored in the same transaction as its effects: a repeat (or a concurrent twin, which waits
on the primary key) finds it and does nothing. Handlers check states rather than trusting order: a refund
that arrives before the payment's completion first completes the payment (a refund proves the charge).

A signature proves the sender, not that the event is about the payment it names: a completion settles a
payment only when it is that payment's own Checkout Session (id, amount, currency, mode); anything else is
audited and answered 200 `refused_...` (see `_checkout_mismatch`).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.audit.service import change_status, record_audit_event
from telehealth.billing import service
from telehealth.billing.gateway import StripeGateway
from telehealth.billing.models import Payment
from telehealth.billing.states import PaymentPurpose, PaymentStatus, RefundStatus
from telehealth.db import driver
from telehealth.lib.actors import Actor
from telehealth.lib.errors import BadRequest
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.states import APPOINTMENT_TRANSITIONS, AppointmentStatus
from telehealth.settings import Settings

logger = logging.getLogger("telehealth.billing")

SIGNATURE_TOLERANCE_SECONDS = 300  # Stripe's default: an older signed payload is a replay
# The stripe library bounds only the past. A signature or event dated ahead would stay "fresh" until then,
# so anything more than this ahead of our clock is refused too; Stripe signs with its own current time, so
# only clock skew puts a genuine one ahead, and Stripe's retry (signed anew) passes once the clocks agree.
FUTURE_SKEW_SECONDS = 300


def _signed_at(signature: str) -> int:
    """The `t=` of a Stripe-Signature header the library has already verified (so it parses)."""
    return next(int(part[2:]) for part in signature.split(",") if part.strip().startswith("t="))


def verified_event(payload: bytes, signature: str | None, *, secret: str, wall_now: float | None = None) -> dict[str, Any]:
    """The event, if Stripe signed exactly these bytes within the tolerance, and neither the signature nor
    the event is dated more than FUTURE_SKEW_SECONDS ahead; else a 400 (nothing is stored, Stripe retries).

    Both bounds use the wall clock, as the library's does: they compare with Stripe's clock, not the app's
    (injectable) one."""
    if not signature:
        raise BadRequest("webhook.signature_missing", "The Stripe-Signature header is missing.")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS)
        event = json.loads(text)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
        raise BadRequest("webhook.signature_invalid", "The signature does not match this payload, or it is too old.") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("data"), dict):
        raise BadRequest("webhook.malformed", "This is not a Stripe event.")
    created = event.get("created", 0)
    if not isinstance(created, int) or isinstance(created, bool):
        raise BadRequest("webhook.malformed", "This is not a Stripe event.")
    latest = (time.time() if wall_now is None else wall_now) + FUTURE_SKEW_SECONDS
    if _signed_at(signature) > latest or created > latest:
        raise BadRequest("webhook.timestamp_in_future", "The signature or the event is dated in the future; check the server's clock.")
    return event


# Each delivery's first statement, on the driver (db/driver.py): a repeat finds the event's id and does nothing.
_FIRST_DELIVERY = "INSERT INTO stripe_event (id, type, received_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id"


async def apply_event(session: AsyncSession, gateway: StripeGateway, *, event: dict[str, Any], now: datetime, settings: Settings) -> str:
    """Act on one verified event; answers what happened ("duplicate", "ignored", or the handler's outcome)."""
    if await driver.fetchval(session, _FIRST_DELIVERY, event["id"], str(event.get("type", ""))[:100], driver.utc(now)) is None:
        return "duplicate"
    handler = HANDLERS.get(str(event.get("type")))
    if handler is None:
        return "ignored"
    outcome = await handler(session, gateway, event["data"].get("object") or {}, now, settings)
    if outcome.startswith("refused_"):
        logger.warning("Stripe event %s refused: %s", event["id"], outcome)  # Stripe's id and a code: no personal data
    return outcome


async def _payment_from_metadata(session: AsyncSession, obj: dict[str, Any]) -> Payment | None:
    # metadata.payment_id only: client_reference_id is not a second way in (it is set, but never trusted)
    reference = (obj.get("metadata") or {}).get("payment_id")
    try:
        payment_id = uuid.UUID(str(reference))
    except ValueError:
        return None
    return await driver.load(session, Payment, payment_id, for_update=True)


# What our own refunds of a payment add up to (pending or done), to tell Stripe's total from refunds made elsewhere.
_OUR_REFUNDS = (
    "SELECT coalesce(sum(amount_cents), 0) FROM refund"
    f" WHERE payment_id = $1 AND status IN ('{RefundStatus.PENDING.value}', '{RefundStatus.SUCCEEDED.value}')"
)


async def _payment_for_intent(session: AsyncSession, gateway: StripeGateway, payment_intent_id: str | None) -> Payment | None:
    """By the PaymentIntent we stored, or (an event that overtook the completion) by re-reading the intent
    from Stripe for our payment id."""
    if not payment_intent_id:
        return None
    found = await driver.load(session, Payment, payment_intent_id, by="stripe_payment_intent_id", for_update=True)
    if found is not None:
        return found
    intent = await gateway.retrieve_payment_intent(payment_intent_id)
    return await _payment_from_metadata(session, intent)


def _checkout_mismatch(payment: Payment, obj: dict[str, Any]) -> str | None:
    """Why this Checkout Session is not the payment's (None when it is): the id we stored when we made it,
    the payment's amount and currency, and a one-off payment."""
    if not payment.stripe_checkout_session_id or obj.get("id") != payment.stripe_checkout_session_id:
        return "session_mismatch"
    if obj.get("mode") != "payment":
        return "not_payment_mode"
    if obj.get("amount_total") != payment.amount_cents:
        return "amount_mismatch"
    if str(obj.get("currency") or "").lower() != payment.currency.lower():
        return "currency_mismatch"
    return None


async def _refuse_settlement(session: AsyncSession, payment: Payment, *, reason: str, now: datetime) -> str:
    """Record a completion that does not match its payment (apply_event logs it). Answered 200: the event is
    stored, so Stripe stops retrying something that can never match (a 4xx or 5xx would be retried for days
    and could get the endpoint disabled, genuine payments with it)."""
    await record_audit_event(
        session,
        actor=Actor.system(),
        action="payment.webhook_refused",
        resource_type="payment",
        resource_id=payment.id,
        patient_id=payment.patient_id,
        now=now,
        outcome="denied",
        reason=reason,
    )
    return f"refused_{reason}"


async def _checkout_paid(session: AsyncSession, gateway: StripeGateway, obj: dict[str, Any], now: datetime, settings: Settings) -> str:
    payment = await _payment_from_metadata(session, obj)
    if payment is None:
        return "ignored"
    if (mismatch := _checkout_mismatch(payment, obj)) is not None:
        return await _refuse_settlement(session, payment, reason=mismatch, now=now)
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        if obj.get("payment_intent") and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = obj["payment_intent"]
            session.add(payment)
        return "awaiting_payment"  # a delayed method: async_payment_succeeded or _failed follows
    return (
        "paid"
        if await service.mark_paid(session, payment, payment_intent_id=obj.get("payment_intent"), now=now, settings=settings)
        else "already_paid"
    )


async def _checkout_async_succeeded(
    session: AsyncSession, gateway: StripeGateway, obj: dict[str, Any], now: datetime, settings: Settings
) -> str:
    return await _checkout_paid(session, gateway, {**obj, "payment_status": "paid"}, now, settings)


async def _lapse_hold(session: AsyncSession, payment: Payment, now: datetime) -> None:
    if payment.appointment_id is None:
        return
    appointment = await driver.load(session, Appointment, payment.appointment_id, for_update=True)
    if appointment is not None and appointment.status == AppointmentStatus.HELD:
        await change_status(
            session,
            Appointment,
            appointment.id,
            table=APPOINTMENT_TRANSITIONS,
            source=AppointmentStatus.HELD,
            target=AppointmentStatus.EXPIRED,
            actor=Actor.system(),
            now=now,
            patient_id=appointment.patient_id,
        )


async def _pays_for_a_hold(session: AsyncSession, payment: Payment) -> bool:
    """Whether this payment would have confirmed a held appointment (and lapses with its session). A fee, a
    program, or a session already booked or attended stays due when a session for it closes unpaid."""
    if payment.appointment_id is None or payment.purpose not in (PaymentPurpose.CONSULT, PaymentPurpose.INTEGRATION):
        return False
    appointment = await driver.load(session, Appointment, payment.appointment_id)
    return appointment is not None and appointment.status in (
        AppointmentStatus.HELD,
        AppointmentStatus.EXPIRED,
        AppointmentStatus.CANCELLED,
    )


def _keep_due(session: AsyncSession, payment: Payment) -> None:
    payment.checkout_url, payment.checkout_expires_at = None, None  # still due: the next click makes a new session
    session.add(payment)


async def _checkout_failed(session: AsyncSession, gateway: StripeGateway, obj: dict[str, Any], now: datetime, settings: Settings) -> str:
    payment = await _payment_from_metadata(session, obj)
    if payment is None or payment.status != PaymentStatus.OPEN or payment.stripe_checkout_session_id != obj.get("id"):
        return "ignored"
    if not await _pays_for_a_hold(session, payment):
        payment.failure_code = "async_payment_failed"
        _keep_due(session, payment)
        return "session_closed"
    await service.release_payment(session, payment, target=PaymentStatus.FAILED, now=now)
    await _lapse_hold(session, payment, now)
    return "failed"


async def _checkout_expired(session: AsyncSession, gateway: StripeGateway, obj: dict[str, Any], now: datetime, settings: Settings) -> str:
    payment = await _payment_from_metadata(session, obj)
    if payment is None or payment.status != PaymentStatus.OPEN or payment.stripe_checkout_session_id != obj.get("id"):
        return "ignored"  # paid meanwhile, or an older session of a payment that has a newer one
    if not await _pays_for_a_hold(session, payment):
        _keep_due(session, payment)
        return "session_closed"
    await service.release_payment(session, payment, target=PaymentStatus.EXPIRED, now=now)
    await _lapse_hold(session, payment, now)
    return "expired"


async def _intent_failed(session: AsyncSession, gateway: StripeGateway, obj: dict[str, Any], now: datetime, settings: Settings) -> str:
    payment = await _payment_for_intent(session, gateway, obj.get("id"))
    if payment is None:
        return "ignored"
    payment.failure_code = str(((obj.get("last_payment_error") or {}).get("code")) or "payment_failed")[:100]
    session.add(payment)
    return "noted"


async def _charge_refunded(session: AsyncSession, gateway: StripeGateway, obj: dict[str, Any], now: datetime, settings: Settings) -> str:
    payment = await _payment_for_intent(session, gateway, obj.get("payment_intent"))
    if payment is None:
        return "ignored"
    if payment.status in (PaymentStatus.OPEN, PaymentStatus.FAILED):
        await service.mark_paid(session, payment, payment_intent_id=obj.get("payment_intent"), now=now, settings=settings)
        await driver.refresh(session, payment)
    ours = await driver.fetchval(session, _OUR_REFUNDS, payment.id)
    outside = int(obj.get("amount_refunded") or 0) - int(ours or 0)
    if outside <= 0:
        return "matched"  # our own refunds: their jobs record them
    refund = await service.request_refund(
        session,
        payment,
        amount_cents=outside,
        reason="outside",
        actor=Actor.system(),
        now=now,
        note="Refunded outside the portal (Stripe dashboard)",
        send=False,
    )
    assert refund is not None
    await service.finish_refund(session, refund, stripe_refund_id=None, now=now)
    return "recorded_outside_refund"


async def _dispute_created(session: AsyncSession, gateway: StripeGateway, obj: dict[str, Any], now: datetime, settings: Settings) -> str:
    payment = await _payment_for_intent(session, gateway, obj.get("payment_intent"))
    if payment is None:
        return "ignored"
    if payment.status in (PaymentStatus.OPEN, PaymentStatus.FAILED):  # a dispute proves the charge, like a refund
        await service.mark_paid(session, payment, payment_intent_id=obj.get("payment_intent"), now=now, settings=settings)
        await driver.refresh(session, payment)
    if payment.disputed_at is None:
        payment.disputed_at = now
        session.add(payment)
    await service.record_dispute(session, payment, amount_cents=int(obj.get("amount") or payment.amount_cents), now=now)
    await record_audit_event(
        session,
        actor=Actor.system(),
        action="payment.dispute",
        resource_type="payment",
        resource_id=payment.id,
        patient_id=payment.patient_id,
        now=now,
        reason=str(obj.get("reason") or "")[:100] or None,
    )
    return "flagged"


Handler = Callable[[AsyncSession, StripeGateway, dict[str, Any], datetime, Settings], Awaitable[str]]
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_paid,
    "checkout.session.async_payment_succeeded": _checkout_async_succeeded,
    "checkout.session.async_payment_failed": _checkout_failed,
    "checkout.session.expired": _checkout_expired,
    "payment_intent.payment_failed": _intent_failed,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}
