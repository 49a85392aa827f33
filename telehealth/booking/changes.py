"""Changing appointments: patients reschedule or cancel (free until 24 h before; inside that, only after
they accept the late fee shown in dollars), clinicians cancel or reschedule any time without a fee and
mark no-shows after the start; a visit that took place changes no more. Each change settles its money
(billing/settlement.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import change_status, record_audit_event
from telehealth.billing.settlement import (
    CancellationQuote,
    cancellation_quote,
    reschedule_quote,
    settle_cancellation,
    settle_no_show,
    settle_reschedule,
)
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, Forbidden, NotFound, RuleRefused
from telehealth.prescribing.models import Encounter
from telehealth.scheduling.calendars import credentials_valid_through, type_settings
from telehealth.scheduling.models import Appointment, AppointmentTypeSettings
from telehealth.scheduling.notices import tell_patient
from telehealth.scheduling.service import clinician_slots, write_or_find_conflict
from telehealth.scheduling.states import APPOINTMENT_TRANSITIONS, AppointmentStatus, AppointmentType
from telehealth.scheduling.visits import visit_of
from telehealth.settings import Settings

FREE_CHANGE_UNTIL = timedelta(hours=24)


async def refuse_change_after_visit(session: AsyncSession, appointment: Appointment) -> None:
    """A visit that took place is part of the record: it cannot be cancelled, moved or marked missed (a consult
    that led to a plan above all: its fee paid for the plan's assessment)."""
    if await visit_of(session, appointment.id) is None:
        return
    decision = await session.scalar(select(Encounter.decision).where(Encounter.appointment_id == appointment.id))
    if decision == "start_plan":
        raise Conflict(
            "appointment.led_to_plan",
            "This consultation led to a treatment plan, so it can no longer be cancelled or refunded.",
        )
    raise Conflict("appointment.visit_took_place", "This visit took place, so it can no longer be cancelled, moved or marked missed.")


async def _confirm_cost(quote: CancellationQuote, *, accept_late_fee: bool) -> None:
    """Inside the free window the patient reads what it costs, in dollars, and must accept it to go ahead."""
    if quote.late and not accept_late_fee:
        raise RuleRefused(
            "appointment.late_fee_applies",
            f"{quote.sentence} Confirm to go ahead, or keep your appointment.",
            extra={"late_fee_cents": quote.fee_cents, "refund_cents": quote.refund_cents},
        )


async def load_for_change(session: AsyncSession, *, appointment_id: uuid.UUID, viewer: SignedIn, patient: Patient | None) -> Appointment:
    """The appointment, locked, if it is the viewer's own (as its patient or as its clinician)."""
    appointment = await session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None or not (
        (patient is not None and appointment.patient_id == patient.id) or appointment.clinician_id == viewer.user_id
    ):
        raise NotFound("appointment.not_found", "No appointment with this id is yours.")
    return appointment


async def cancel(
    session: AsyncSession,
    appointment: Appointment,
    *,
    by_patient: bool,
    accept_late_fee: bool,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> Appointment:
    await refuse_change_after_visit(session, appointment)
    await _confirm_cost(
        await cancellation_quote(session, appointment, by_patient=by_patient, now=now, settings=settings), accept_late_fee=accept_late_fee
    )
    was = appointment.status
    await change_status(
        session,
        Appointment,
        appointment.id,
        table=APPOINTMENT_TRANSITIONS,
        source=appointment.status,
        target=AppointmentStatus.CANCELLED,
        actor=actor,
        now=now,
        patient_id=appointment.patient_id,
        values={"cancelled_at": now, "ics_sequence": appointment.ics_sequence + 1},  # a CANCEL must outrank the invite it cancels
    )
    await session.refresh(appointment)
    await settle_cancellation(session, appointment, was=was, by_patient=by_patient, actor=actor, now=now, settings=settings)
    if was == AppointmentStatus.BOOKED:
        await tell_patient(session, appointment, now=now, settings=settings, cancelled=True)
    return appointment


async def reschedule(
    session: AsyncSession,
    appointment: Appointment,
    *,
    new_start: datetime,
    by_patient: bool,
    accept_late_fee: bool,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> Appointment:
    """Move the same appointment (its history stays); the invite's SEQUENCE goes up, reminders follow."""
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict("appointment.not_booked", "Only a booked appointment can be moved.")
    await refuse_change_after_visit(session, appointment)
    quote = await reschedule_quote(session, appointment, by_patient=by_patient, now=now, settings=settings)
    await _confirm_cost(quote, accept_late_fee=accept_late_fee)
    kind = AppointmentType(appointment.appointment_type)
    patient = await session.get(Patient, appointment.patient_id)
    assert patient is not None and patient.state_of_residence
    valid = await credentials_valid_through(session, appointment_type=kind, state=patient.state_of_residence, on_or_after=new_start.date())
    if appointment.clinician_id not in valid:
        raise Conflict("appointment.slot_unavailable", "That clinician cannot see you on that date.")
    day_start = new_start - timedelta(hours=14)
    offered = await clinician_slots(
        session,
        clinician_id=appointment.clinician_id,
        appointment_type=kind,
        window_start=day_start,
        window_end=day_start + timedelta(days=1, hours=4),
        now=now,
        valid_through=valid[appointment.clinician_id],
        ignore=appointment.id,
    )
    if new_start not in offered:
        raise Conflict(
            "appointment.slot_unavailable", "That time is not open. Choose another.", extra={"slots": [s.isoformat() for s in offered[:20]]}
        )
    settings_row = type_settings(await session.get(AppointmentTypeSettings, (appointment.clinician_id, kind.value)), kind)
    new_end = new_start + settings_row.duration

    async def move() -> None:
        await session.execute(
            update(Appointment)
            .where(col(Appointment.id) == appointment.id)
            .values(
                starts_at=new_start,
                ends_at=new_end,
                busy_from=new_start - settings_row.buffer_before,
                busy_until=new_end + settings_row.buffer_after,
                ics_sequence=Appointment.ics_sequence + 1,
            )
            .execution_options(synchronize_session=False)
        )

    if await write_or_find_conflict(session, move) is not None:
        raise Conflict("appointment.slot_taken", "That time was just taken. Choose another.")
    await record_audit_event(
        session,
        actor=actor,
        action="appointment.reschedule",
        resource_type="appointment",
        resource_id=appointment.id,
        patient_id=appointment.patient_id,
        now=now,
    )
    await session.refresh(appointment)
    await settle_reschedule(session, appointment, quote=quote, now=now, settings=settings)
    await tell_patient(session, appointment, now=now, settings=settings)
    return appointment


async def mark_no_show(
    session: AsyncSession, appointment: Appointment, *, viewer: SignedIn, actor: Actor, now: datetime, settings: Settings
) -> Appointment:
    if appointment.clinician_id != viewer.user_id:
        raise Forbidden("appointment.clinician_only", "Only the appointment's clinician can mark a no-show.")
    if now < appointment.starts_at:
        raise RuleRefused("appointment.not_started", "A no-show can be marked only after the start time.")
    await refuse_change_after_visit(session, appointment)
    await change_status(
        session,
        Appointment,
        appointment.id,
        table=APPOINTMENT_TRANSITIONS,
        source=appointment.status,
        target=AppointmentStatus.NO_SHOW,
        actor=actor,
        now=now,
        patient_id=appointment.patient_id,
    )
    await session.refresh(appointment)
    await settle_no_show(session, appointment, now=now, settings=settings)
    return appointment
