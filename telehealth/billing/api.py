"""JSON API: Stripe's webhook, paying, the patient's statement, the policy, and the coordinator's refunds
and totals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.billing import policy as rules
from telehealth.billing import service
from telehealth.billing.events import apply_event, verified_event
from telehealth.billing.gateway import StripeGateway
from telehealth.billing.models import BillingPolicy, Payment
from telehealth.billing.schemas import (
    CheckoutBody,
    CheckoutRequest,
    DailyTotal,
    LedgerLine,
    ManualRefundRequest,
    PaymentBody,
    PolicyBody,
    PolicyUpdate,
    RefundBody,
    StatementBody,
)
from telehealth.billing.states import PaymentPurpose, PaymentStatus
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.settings import Settings

PATIENT = [requires_role(Role.PATIENT)]
COORDINATOR = [requires_role(Role.COORDINATOR)]


def checkout_body(payment: Payment, policy: BillingPolicy) -> CheckoutBody:
    return CheckoutBody(
        payment_id=payment.id,
        amount_cents=payment.amount_cents,
        checkout_url=payment.checkout_url,
        expires_at=payment.checkout_expires_at,
        policy=rules.before_payment(PaymentPurpose(payment.purpose), policy),
    )


def payment_body(payment: Payment) -> PaymentBody:
    return PaymentBody(
        id=payment.id,
        purpose=payment.purpose,
        status=payment.status,
        amount_cents=payment.amount_cents,
        refunded_cents=payment.refunded_cents,
        created_at=payment.created_at,
        paid_at=payment.paid_at,
        appointment_id=payment.appointment_id,
        disputed=payment.disputed_at is not None,
    )


def policy_body(policy: BillingPolicy) -> PolicyBody:
    numbers = {name: getattr(policy, name) for name in service.POLICY_FIELDS}
    return PolicyBody(
        **numbers,
        appointments=rules.before_payment(PaymentPurpose.CONSULT, policy),
        program=rules.before_payment(PaymentPurpose.PROGRAM, policy),
    )


class StripeWebhookController(Controller):
    tags = ["billing"]

    @post("/api/v1/billing/stripe/webhook", status_code=200, exclude_from_csrf=True)
    async def webhook(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        stripe_gateway: NamedDependency[StripeGateway],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> dict[str, str]:
        """Stripe's events, verified on the raw body. A bad or missing signature, or one dated in the future,
        answers 400 and stores nothing; a repeat answers 200 and does nothing; a completion that is not its
        payment's own session answers 200 `refused_...` (audited; retrying could never make it match)."""
        event = verified_event(await request.body(), request.headers.get("stripe-signature"), secret=settings.stripe_webhook_secret)
        outcome = await apply_event(db_session, stripe_gateway, event=event, now=clock.now(), settings=settings)
        return {"received": event["id"], "outcome": outcome}


class BillingApiController(Controller):
    tags = ["billing"]

    @get("/api/v1/billing/policy")
    async def policy(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> PolicyBody:
        """The fees and the refund rules, with the sentences a patient reads before paying."""
        return policy_body(await service.current_policy(db_session, settings))

    @put("/api/v1/billing/policy", guards=COORDINATOR)
    async def change_policy(
        self,
        data: JSONBody[PolicyUpdate],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> PolicyBody:
        """Change fees or refund rules (audited); new payments and cancellations use them."""
        values = {name: getattr(data, name) for name in PolicyUpdate.__struct_fields__ if getattr(data, name) is not None}
        return policy_body(await service.update_policy(db_session, values=values, actor=actor, now=clock.now(), settings=settings))

    @post("/api/v1/billing/appointments/{appointment_id:uuid}/checkout", status_code=200, guards=PATIENT)
    async def pay_appointment(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: JSONBody[CheckoutRequest],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        stripe_gateway: NamedDependency[StripeGateway],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> CheckoutBody:
        """The Checkout Session for a held appointment (the same one on a second click)."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        payment = await service.checkout_for_held_appointment(
            db_session,
            stripe_gateway,
            appointment_id=appointment_id,
            patient=patient,
            now=clock.now(),
            settings=settings,
            save_payment_method=data.save_payment_method,
        )
        return checkout_body(payment, await service.current_policy(db_session, settings))

    @post("/api/v1/billing/payments/{payment_id:uuid}/checkout", status_code=200, guards=PATIENT)
    async def pay_due(
        self,
        payment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        stripe_gateway: NamedDependency[StripeGateway],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> CheckoutBody:
        """Pay an amount due (program fee, a fee, a session a therapist booked)."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        payment = await service.checkout_for_payment(
            db_session, stripe_gateway, payment_id=payment_id, patient=patient, now=clock.now(), settings=settings
        )
        return checkout_body(payment, await service.current_policy(db_session, settings))

    @get("/api/v1/billing/statement", guards=PATIENT)
    async def statement(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> StatementBody:
        """Your payments, the ledger (charges positive, refunds negative) and what is still due."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        payments = await service.payments_for(db_session, patient_id=patient.id)
        ledger = await service.ledger_for(db_session, patient_id=patient.id)
        return StatementBody(
            payments=[payment_body(p) for p in payments],
            ledger=[
                LedgerLine(kind=e.kind, amount_cents=e.amount_cents, label=e.label, occurred_at=e.occurred_at, payment_id=e.payment_id)
                for e in ledger
            ],
            balance_due_cents=sum(
                p.amount_cents
                for p in payments
                if (p.status == PaymentStatus.OPEN and p.appointment_id is None)
                or (p.status == PaymentStatus.OPEN and p.purpose in (PaymentPurpose.LATE_CANCEL_FEE, PaymentPurpose.NO_SHOW_FEE))
            ),
        )

    @post("/api/v1/billing/payments/{payment_id:uuid}/refunds", status_code=201, guards=COORDINATOR)
    async def manual_refund(
        self,
        payment_id: FromPath[uuid.UUID],
        data: JSONBody[ManualRefundRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> RefundBody:
        """Refund part or all of what is left on a payment, with a reason (audited; the reason stays with us)."""
        refund = await service.manual_refund(
            db_session, payment_id=payment_id, amount_cents=data.amount_cents, note=data.reason, actor=actor, now=clock.now()
        )
        return RefundBody(
            id=refund.id, payment_id=refund.payment_id, amount_cents=refund.amount_cents, reason=refund.reason, status=refund.status
        )

    @get("/api/v1/billing/daily-totals", guards=COORDINATOR)
    async def totals(
        self, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings], clock: NamedDependency[Clock]
    ) -> list[DailyTotal]:
        """Charged, refunded and disputed per clinic-local day, last 30 days."""
        rows = await service.daily_totals(db_session, since=clock.now() - timedelta(days=30), zone=settings.clinic_timezone)
        return [
            DailyTotal(day=str(r["day"]), charged_cents=r["charge"], refunded_cents=-r["refund"], disputed_cents=-r["dispute"])
            for r in rows
        ]

    @get("/api/v1/billing/disputes", guards=COORDINATOR)
    async def disputes(self, db_session: NamedDependency[AsyncSession]) -> list[PaymentBody]:
        return [payment_body(p) for p in await service.disputed_payments(db_session)]
