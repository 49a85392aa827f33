"""JSON API for booking: patients book (paid appointments are held until Stripe confirms), cancel and move
theirs with the late fee accepted first; clinicians cancel, move and mark no-shows; therapists book follow-ups.
A patient's own list of appointments is here too: it shares its URL with booking (slots and the video visit
stay in scheduling/api.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import load_patient_for, own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.booking import changes, service
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.scheduling import service as scheduling
from telehealth.scheduling.api import appointment_body, aware
from telehealth.scheduling.schemas import AppointmentBody, BookAppointment, CancelBody, FollowUpBody, RescheduleBody
from telehealth.scheduling.states import AppointmentType
from telehealth.settings import Settings

PATIENT = [requires_role(Role.PATIENT)]
CLINICIAN = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]
PARTICIPANTS = [requires_role(Role.PATIENT, Role.PRESCRIBER, Role.THERAPIST)]


async def _patient_or_none(db_session: AsyncSession, signed_in: SignedIn) -> Patient | None:
    return await own_patient_record(db_session, viewer=signed_in) if signed_in.role is Role.PATIENT else None


class BookingApiController(Controller):
    tags = ["scheduling"]  # the same group of the API document as the appointments' other URLs

    @post("/api/v1/appointments", status_code=201, guards=PATIENT)
    async def book(
        self,
        data: JSONBody[BookAppointment],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> AppointmentBody:
        """Book (or hold for 15 minutes) one open slot. A paid appointment (every consult) is held for 30 minutes
        and answers its `amount_cents`: POST /api/v1/billing/appointments/{id}/checkout then answers the Stripe
        Checkout URL (and `save_payment_method` there keeps the card for fees), and the appointment becomes
        booked only when Stripe confirms the payment. Read the policy at /api/v1/billing/policy first. A slot
        someone else just took answers 409 with fresh slots."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        appointment, fee = await service.book_for_patient(
            db_session,
            patient=patient,
            clinician_id=data.clinician_id,
            appointment_type=AppointmentType(data.type),
            starts_at=aware(data.starts_at, "starts_at"),
            hold=data.hold,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return appointment_body(appointment, amount_cents=fee)

    # Beside book, not in scheduling/api.py: Litestar answers OPTIONS for a path from one controller only.
    @get("/api/v1/appointments", guards=PATIENT)
    async def mine(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock]
    ) -> list[AppointmentBody]:
        patient = await own_patient_record(db_session, viewer=signed_in)
        return [
            appointment_body(a)
            for a in await scheduling.patient_appointments(db_session, patient=patient, since=clock.now() - timedelta(days=1))
        ]

    @post("/api/v1/appointments/{appointment_id:uuid}/cancel", status_code=200, guards=PARTICIPANTS)
    async def cancel(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: JSONBody[CancelBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> AppointmentBody:
        """Cancel: free for patients until 24 h before, then only with `accept_late_fee`; clinicians any time."""
        patient = await _patient_or_none(db_session, signed_in)
        appointment = await changes.load_for_change(db_session, appointment_id=appointment_id, viewer=signed_in, patient=patient)
        by_patient = signed_in.role is Role.PATIENT
        return appointment_body(
            await changes.cancel(
                db_session,
                appointment,
                by_patient=by_patient,
                accept_late_fee=data.accept_late_fee,
                actor=actor,
                now=clock.now(),
                settings=settings,
            )
        )

    @post("/api/v1/appointments/{appointment_id:uuid}/reschedule", status_code=200, guards=PARTICIPANTS)
    async def reschedule(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: JSONBody[RescheduleBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> AppointmentBody:
        """Move the appointment to another open time of the same clinician (same rules as cancelling)."""
        patient = await _patient_or_none(db_session, signed_in)
        appointment = await changes.load_for_change(db_session, appointment_id=appointment_id, viewer=signed_in, patient=patient)
        moved = await changes.reschedule(
            db_session,
            appointment,
            new_start=aware(data.starts_at, "starts_at"),
            by_patient=signed_in.role is Role.PATIENT,
            accept_late_fee=data.accept_late_fee,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        return appointment_body(moved)

    @post("/api/v1/appointments/{appointment_id:uuid}/no-show", status_code=200, guards=CLINICIAN)
    async def no_show(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> AppointmentBody:
        appointment = await changes.load_for_change(db_session, appointment_id=appointment_id, viewer=signed_in, patient=None)
        return appointment_body(
            await changes.mark_no_show(db_session, appointment, viewer=signed_in, actor=actor, now=clock.now(), settings=settings)
        )

    @post("/api/v1/follow-ups", status_code=201, guards=[requires_role(Role.THERAPIST)])
    async def follow_up(
        self,
        data: JSONBody[FollowUpBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> AppointmentBody:
        """Book an integration session for one of your own patients, from your own hours."""
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=data.patient_id, actor=actor, now=clock.now(), purpose="follow_up.book"
        )
        therapist = await db_session.get(UserAccount, signed_in.user_id)
        assert therapist is not None
        appointment, payment = await service.book_follow_up(
            db_session,
            therapist=therapist,
            patient=patient,
            starts_at=aware(data.starts_at, "starts_at"),
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        if payment is None:
            return appointment_body(appointment)
        return appointment_body(appointment, payment_id=payment.id, checkout_url=payment.checkout_url, amount_cents=payment.amount_cents)
