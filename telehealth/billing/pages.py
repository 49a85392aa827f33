"""HTML pages for money: what a payment costs and the policy before paying, the return from Stripe (which
waits for Stripe's word), the statement with receipts and a superbill, and the coordinator's totals,
disputes and refunds."""

from __future__ import annotations

import uuid
from datetime import timedelta

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.billing import policy as rules
from telehealth.billing import service
from telehealth.billing.gateway import StripeGateway
from telehealth.billing.models import Payment, Refund
from telehealth.billing.policy_form import POLICY_FORM, policy_values
from telehealth.billing.states import STRIPE_PRODUCT_NAMES, PaymentPurpose, PaymentStatus
from telehealth.clinicians.models import ClinicianProfile
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError, InvalidInput, NotFound
from telehealth.lib.forms import attempt, form_fields
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.states import AppointmentType
from telehealth.settings import Settings

PATIENT = [requires_role(Role.PATIENT)]
COORDINATOR = [requires_role(Role.COORDINATOR)]


async def _own_payment(session: AsyncSession, signed_in: SignedIn, payment_id: uuid.UUID) -> Payment:
    patient = await own_patient_record(session, viewer=signed_in)
    payment = await session.get(Payment, payment_id)
    if payment is None or payment.patient_id != patient.id:
        raise NotFound("payment.not_found", "No payment with this id is yours.")
    return payment


class BillingPagesController(Controller):
    guards = PATIENT

    @get("/billing")
    async def statement(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template:
        patient = await own_patient_record(db_session, viewer=signed_in)
        payments = await service.payments_for(db_session, patient_id=patient.id)
        ledger = await service.ledger_for(db_session, patient_id=patient.id)
        due = [p for p in payments if p.status == PaymentStatus.OPEN]
        return Template(
            "billing/statement.html",
            context={
                "payments": payments,
                "ledger": ledger,
                "due": due,
                "zone": patient.timezone,
                "dollars": rules.dollars,
                "names": STRIPE_PRODUCT_NAMES,
            },
        )

    @get("/billing/appointments/{appointment_id:uuid}/pay")
    async def appointment_pay_form(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Template:
        patient = await own_patient_record(db_session, viewer=signed_in)
        appointment = await db_session.get(Appointment, appointment_id)
        if appointment is None or appointment.patient_id != patient.id:
            raise NotFound("appointment.not_found", "No appointment with this id is yours.")
        purpose = service.PURPOSE_BY_APPOINTMENT.get(AppointmentType(appointment.appointment_type))
        if purpose is None:
            return Template(
                "billing/problem.html",
                context={"detail": "This appointment is part of your plan: there is nothing to pay."},
                status_code=422,
            )
        policy = await service.current_policy(db_session, settings)
        return Template(
            "billing/pay.html",
            context={
                "action": f"/billing/appointments/{appointment_id}/pay",
                "amount": rules.dollars(rules.fee_for(purpose, policy)),
                "sentences": rules.before_payment(purpose, policy),
                "appointment": appointment,
                "zone": patient.timezone,
                "offer_card_on_file": True,
            },
        )

    @post("/billing/appointments/{appointment_id:uuid}/pay")
    async def appointment_pay(
        self,
        request: Request,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        stripe_gateway: NamedDependency[StripeGateway],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """To Stripe's page; the appointment is booked when Stripe tells us the payment completed."""
        fields = await form_fields(request, "save_payment_method")
        patient = await own_patient_record(db_session, viewer=signed_in)
        result = await attempt(
            db_session,
            service.checkout_for_held_appointment(
                db_session,
                stripe_gateway,
                appointment_id=appointment_id,
                patient=patient,
                now=clock.now(),
                settings=settings,
                save_payment_method=fields["save_payment_method"] == "yes",
            ),
        )
        if isinstance(result, DomainError):
            return Template("billing/problem.html", context={"detail": result.detail}, status_code=result.status_code)
        return Redirect(path=result.checkout_url or "/billing", status_code=303)

    @get("/billing/payments/{payment_id:uuid}/pay")
    async def due_pay_form(
        self,
        payment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Template:
        payment = await _own_payment(db_session, signed_in, payment_id)
        policy = await service.current_policy(db_session, settings)
        return Template(
            "billing/pay.html",
            context={
                "action": f"/billing/payments/{payment_id}/pay",
                "amount": rules.dollars(payment.amount_cents),
                "sentences": rules.before_payment(PaymentPurpose(payment.purpose), policy),
                "appointment": None,
                "offer_card_on_file": False,
            },
        )

    @post("/billing/payments/{payment_id:uuid}/pay")
    async def due_pay(
        self,
        payment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        stripe_gateway: NamedDependency[StripeGateway],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        result = await attempt(
            db_session,
            service.checkout_for_payment(
                db_session, stripe_gateway, payment_id=payment_id, patient=patient, now=clock.now(), settings=settings
            ),
        )
        if isinstance(result, DomainError):
            return Template("billing/problem.html", context={"detail": result.detail}, status_code=result.status_code)
        return Redirect(path=result.checkout_url or "/billing", status_code=303)

    @get("/billing/return")
    async def back_from_stripe(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], payment: FromQuery[uuid.UUID]
    ) -> Template:
        """Where Stripe sends the browser back. It proves nothing: the page shows what Stripe's webhook has told us."""
        found = await _own_payment(db_session, signed_in, payment)
        return Template(
            "billing/return.html",
            context={"payment": found, "dollars": rules.dollars, "paid": found.status in (PaymentStatus.PAID, PaymentStatus.REFUNDED)},
        )

    @get("/billing/payments/{payment_id:uuid}/receipt")
    async def receipt(
        self,
        payment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Template:
        payment = await _own_payment(db_session, signed_in, payment_id)
        patient = await own_patient_record(db_session, viewer=signed_in)
        refunds = list(
            (await db_session.execute(select(Refund).where(Refund.payment_id == payment.id).order_by(col(Refund.created_at)))).scalars()
        )
        return Template(
            "billing/receipt.html",
            context={
                "payment": payment,
                "refunds": refunds,
                "settings": settings,
                "zone": patient.timezone,
                "dollars": rules.dollars,
                "name": STRIPE_PRODUCT_NAMES[PaymentPurpose(payment.purpose)],
            },
        )

    @get("/billing/superbill")
    async def superbill(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> Template:
        """An itemised statement for an out-of-network claim: clinic, provider and NPI, dates of service, CPT codes."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        account = await db_session.get(UserAccount, signed_in.user_id)
        rows = await db_session.execute(
            select(Payment, Appointment, UserAccount.full_name, ClinicianProfile.npi)
            .join(Appointment, col(Appointment.id) == Payment.appointment_id)
            .join(UserAccount, col(UserAccount.id) == Appointment.clinician_id)
            .outerjoin(ClinicianProfile, col(ClinicianProfile.user_id) == Appointment.clinician_id)
            .where(
                Payment.patient_id == patient.id,
                col(Payment.status).in_([PaymentStatus.PAID, PaymentStatus.REFUNDED]),
                col(Appointment.status).in_(["booked", "completed"]),
            )
            .order_by(col(Appointment.starts_at))
        )
        lines = [
            {
                "date": a.starts_at,
                "provider": name,
                "npi": npi or "—",
                "cpt": settings.cpt_code_by_type.get(a.appointment_type, "—"),
                "name": STRIPE_PRODUCT_NAMES[PaymentPurpose(p.purpose)],
                "paid": p.amount_cents - p.refunded_cents,
            }
            for p, a, name, npi in rows.all()
        ]
        return Template(
            "billing/superbill.html",
            context={
                "lines": lines,
                "settings": settings,
                "patient": patient,
                "account": account,
                "zone": patient.timezone,
                "dollars": rules.dollars,
                "total": sum(line["paid"] for line in lines),
            },
        )


class CoordinatorBillingPagesController(Controller):
    guards = COORDINATOR

    @get("/coordinator/billing")
    async def overview(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return Template("billing/coordinator.html", context=await self._overview_context(db_session, settings, clock) | {"notice": notice})

    @staticmethod
    async def _overview_context(db_session: AsyncSession, settings: Settings, clock: Clock) -> dict[str, object]:
        totals = await service.daily_totals(db_session, since=clock.now() - timedelta(days=14), zone=settings.clinic_timezone)
        disputes = await service.disputed_payments(db_session)
        failed = list(
            (
                await db_session.execute(select(Refund).where(Refund.status == "failed").order_by(col(Refund.created_at).desc()).limit(50))
            ).scalars()
        )
        recent = list(
            (
                await db_session.execute(
                    select(Payment).where(col(Payment.status).in_(["paid", "refunded"])).order_by(col(Payment.paid_at).desc()).limit(50)
                )
            ).scalars()
        )
        return {
            "totals": totals,
            "disputes": disputes,
            "failed": failed,
            "recent": recent,
            "dollars": rules.dollars,
            "zone": settings.clinic_timezone,
            "policy": await service.current_policy(db_session, settings),
            "names": STRIPE_PRODUCT_NAMES,
            "policy_form": POLICY_FORM,
            "fields": {},
            "values": {},
        }

    @post("/coordinator/billing/policy")
    async def change_policy(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """The fees and refund rules, changed from the page (the same rule and audit as PUT /api/v1/billing/policy)."""
        raw = await form_fields(request, *POLICY_FORM)
        values, problems = policy_values(raw)
        result = (
            InvalidInput("request.invalid", "Some values need another look.", fields=problems)
            if problems
            else await attempt(
                db_session, service.update_policy(db_session, values=values, actor=actor, now=clock.now(), settings=settings)
            )
        )
        if isinstance(result, DomainError):
            context = await self._overview_context(db_session, settings, clock) | {
                "error": result.detail,
                "fields": result.fields,
                "values": raw,
            }
            return Template("billing/coordinator.html", context=context, status_code=result.status_code)
        return Redirect(path="/coordinator/billing?notice=policy")

    @post("/coordinator/billing/payments/{payment_id:uuid}/refund")
    async def refund(
        self,
        request: Request,
        payment_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "amount", "reason")
        try:
            cents = round(float(fields["amount"].replace("$", "").replace(",", "")) * 100)
        except ValueError:
            cents = 0
        result = await attempt(
            db_session,
            service.manual_refund(
                db_session, payment_id=payment_id, amount_cents=cents, note=fields["reason"], actor=actor, now=clock.now()
            ),
        )
        if isinstance(result, DomainError):
            return Template("billing/problem.html", context={"detail": result.detail}, status_code=result.status_code)
        return Redirect(path=f"/coordinator/billing?notice=refunded-{cents}")
