"""Dosing sessions, reading and calendar: the patient schedules each dose of an active plan with a
confirmed sitter (who gets an invite and a link to say they cannot come), moves or cancels it. The dose
itself is in before_dose.py (check-in, presence, unlock) and after_dose.py (report, end attestation)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.locks import lock_patient
from telehealth.accounts.models import Patient
from telehealth.accounts.service import patient_contact
from telehealth.audit.service import change_status, record_audit_event
from telehealth.dosing.models import CheckIn, DosingReport, DosingSession, Sitter, SitterAttestation
from telehealth.dosing.sitter_checks import is_verified
from telehealth.dosing.sitter_mail import email_sitter, local_time
from telehealth.dosing.sitters import issue_link, open_link, revoke_links, spend_link
from telehealth.dosing.states import SESSION_TRANSITIONS, LinkPurpose, SessionStatus, SitterStatus
from telehealth.intake.escalations import has_open_crisis
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, NotFound, RuleRefused
from telehealth.notifications.service import queue_email
from telehealth.prescribing.models import PlanBatch, TrochePlan
from telehealth.prescribing.plans import live_plan
from telehealth.prescribing.states import BatchStatus, PlanStatus
from telehealth.settings import Settings

SCHEDULE_HORIZON = timedelta(days=60)


# --- reading ------------------------------------------------------------------------------------------


async def own_session(session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, lock: bool = False) -> DosingSession:
    """`lock` takes the patient, then the session (the order of accounts/locks.py)."""
    if lock:
        await lock_patient(session, patient.id)
    found = await session.get(DosingSession, dosing_session_id, with_for_update=lock, populate_existing=True)
    if found is None or found.patient_id != patient.id:
        raise NotFound("dosing_session.not_found", "No session with this id is yours.")
    return found


async def locked_session(session: AsyncSession, dosing_session_id: uuid.UUID) -> DosingSession | None:
    """A session reached through a sitter's link (no patient at hand): its patient, then the row, locked."""
    found = await session.get(DosingSession, dosing_session_id)
    if found is None:
        return None
    await lock_patient(session, found.patient_id)
    return await session.get(DosingSession, dosing_session_id, with_for_update=True, populate_existing=True)


async def sessions_of(session: AsyncSession, *, plan_id: uuid.UUID) -> list[DosingSession]:
    return list(
        (
            await session.execute(select(DosingSession).where(DosingSession.plan_id == plan_id).order_by(col(DosingSession.scheduled_at)))
        ).scalars()
    )


async def check_ins_of(session: AsyncSession, *, dosing_session_id: uuid.UUID) -> list[CheckIn]:
    return list(
        (
            await session.execute(select(CheckIn).where(CheckIn.dosing_session_id == dosing_session_id).order_by(col(CheckIn.attempt)))
        ).scalars()
    )


async def attestation(session: AsyncSession, *, dosing_session_id: uuid.UUID, kind: str) -> SitterAttestation | None:
    return (
        await session.execute(
            select(SitterAttestation).where(SitterAttestation.dosing_session_id == dosing_session_id, SitterAttestation.kind == kind)
        )
    ).scalar_one_or_none()


async def last_dose_at(session: AsyncSession, *, plan_id: uuid.UUID) -> datetime | None:
    """When the last dose was taken: the newest unlock, unless its report says no troche was used."""
    return await session.scalar(
        select(func.max(DosingSession.unlocked_at))
        .outerjoin(DosingReport, col(DosingReport.dosing_session_id) == DosingSession.id)
        .where(
            DosingSession.plan_id == plan_id,
            col(DosingSession.status).in_([SessionStatus.UNLOCKED, SessionStatus.REPORTED]),
            func.coalesce(DosingReport.troches_used, 1) > 0,
        )
    )


async def batch_holding(session: AsyncSession, *, plan_id: uuid.UUID, number: int) -> PlanBatch | None:
    return (
        await session.execute(
            select(PlanBatch).where(PlanBatch.plan_id == plan_id, PlanBatch.first_session <= number, PlanBatch.last_session >= number)
        )
    ).scalar_one_or_none()


def units_for(plan: TrochePlan, number: int) -> int:
    return plan.doses_mg[number - 1] // plan.strength_mg


def display_status(dosing_session: DosingSession, *, checked_in: bool, sitter_present: bool) -> str:
    """The state the patient sees: scheduled, checked in, waiting for the sitter, unlocked, reported, ..."""
    if dosing_session.status != SessionStatus.SCHEDULED:
        return str(dosing_session.status)
    if not checked_in:
        return "scheduled"
    return "checked_in" if sitter_present else "waiting_for_sitter"


# --- scheduling ---------------------------------------------------------------------------------------


async def _active_plan(session: AsyncSession, patient: Patient) -> TrochePlan:
    plan = await live_plan(session, patient_id=patient.id)
    if plan is None:
        raise RuleRefused("dosing.no_plan", "You have no active plan to schedule sessions for.")
    if plan.status == PlanStatus.PAUSED:
        raise RuleRefused("dosing.plan_paused", "Your plan is paused until your prescriber reviews it; no session can be scheduled now.")
    if plan.status != PlanStatus.ACTIVE:
        raise RuleRefused("dosing.plan_not_active", "Your plan starts when your first shipment is delivered.")
    return plan


async def _confirmed_sitter(session: AsyncSession, patient: Patient, sitter_id: uuid.UUID | None, settings: Settings) -> Sitter:
    sitter = await session.get(Sitter, sitter_id) if sitter_id else None
    if sitter is None or sitter.patient_id != patient.id:
        raise InvalidInput("request.invalid", "Choose one of your sitters.", fields={"sitter_id": "is not one of your sitters"})
    if sitter.status != SitterStatus.CONFIRMED:
        raise InvalidInput(
            "request.invalid", f"{sitter.full_name} has not signed the sitter agreement.", fields={"sitter_id": "has not confirmed yet"}
        )
    if not is_verified(sitter, settings):  # DOMAIN.md: a coordinator's short call before a sitter's first session
        raise InvalidInput(
            "request.invalid",
            f"{sitter.full_name} has signed the agreement, but our team has not verified them yet: a coordinator calls each new "
            "sitter for a few minutes before their first session. You can schedule with them once that call is done.",
            fields={"sitter_id": "has not been verified by our team yet"},
        )
    return sitter


async def _check_time(session: AsyncSession, plan: TrochePlan, patient: Patient, *, starts_at: datetime, now: datetime) -> None:
    if starts_at.tzinfo is None:
        raise InvalidInput("request.invalid", "Give the time with its zone.", fields={"starts_at": "must include a time zone"})
    if starts_at <= now:
        raise InvalidInput("request.invalid", "Choose a time in the future.", fields={"starts_at": "must be in the future"})
    if starts_at > now + SCHEDULE_HORIZON:
        raise InvalidInput("request.invalid", "Choose a time within the next 60 days.", fields={"starts_at": "must be within 60 days"})
    last = await last_dose_at(session, plan_id=plan.id)
    if last is not None and starts_at < last + timedelta(hours=plan.min_hours_between):
        earliest = local_time(last + timedelta(hours=plan.min_hours_between), patient.timezone)
        raise RuleRefused(
            "dosing.too_soon",
            f"Your plan needs {plan.min_hours_between} hours between doses: the earliest is {earliest}.",
            fields={"starts_at": f"must be at or after {earliest}"},
        )


async def _tell_sitter(
    session: AsyncSession, dosing_session: DosingSession, sitter: Sitter, *, now: datetime, settings: Settings, cancelled: bool = False
) -> None:
    """The sitter's email with a calendar invite (the time and the patient's name, no health details) and
    their link to say they cannot come; or the invite's cancellation."""
    if cancelled:
        await email_sitter(session, dosing_session, sitter, change="cancelled", now=now)
        return
    excuse = await issue_link(
        session,
        sitter_id=sitter.id,
        purpose=LinkPurpose.EXCUSE,
        now=now,
        expires_at=dosing_session.scheduled_at,
        dosing_session_id=dosing_session.id,
    )
    await email_sitter(session, dosing_session, sitter, change="scheduled", now=now, link_url=f"{settings.public_base_url}/sitter/{excuse}")


async def _insert(session: AsyncSession, row: DosingSession) -> None:
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as error:
        if "uq_dosing_session" not in str(error.orig):
            raise
        raise Conflict("dosing.already_scheduled", "Your next session is already scheduled: reschedule or cancel it instead.") from None


async def schedule_session(
    session: AsyncSession,
    *,
    patient: Patient,
    starts_at: datetime,
    sitter_id: uuid.UUID | None,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> DosingSession:
    """The next dose of the active plan, at a time the interval allows, with a confirmed sitter, once the
    batch holding that dose is delivered, and never while a crisis waits for a clinician's contact."""
    await lock_patient(session, patient.id)  # a pause or a crisis committed meanwhile is seen below, not missed
    if await has_open_crisis(session, patient_id=patient.id):
        raise RuleRefused(
            "dosing.crisis_contact_pending",
            "Before your next session, a clinician needs to speak with you. We will call you soon; if you need help now, "
            "call or text 988, or call 911 in an emergency.",
        )
    plan = await _active_plan(session, patient)
    taken = await session.scalar(
        select(func.count())
        .select_from(DosingSession)
        .where(DosingSession.plan_id == plan.id, col(DosingSession.status).in_([SessionStatus.UNLOCKED, SessionStatus.REPORTED]))
    )
    number = (taken or 0) + 1
    if number > plan.sessions:
        raise RuleRefused("dosing.plan_complete", "Every session of your plan has been taken.")
    batch = await batch_holding(session, plan_id=plan.id, number=number)
    if batch is None or batch.status != BatchStatus.DELIVERED:
        raise RuleRefused("dosing.batch_not_delivered", f"Session {number} can be scheduled once the shipment with its dose is delivered.")
    sitter = await _confirmed_sitter(session, patient, sitter_id, settings)
    await _check_time(session, plan, patient, starts_at=starts_at, now=now)
    row = DosingSession(
        plan_id=plan.id,
        patient_id=patient.id,
        sitter_id=sitter.id,
        number=number,
        status=SessionStatus.SCHEDULED,
        scheduled_at=starts_at,
        created_at=now,
        updated_at=now,
    )
    await _insert(session, row)
    await record_audit_event(
        session,
        actor=actor,
        action="dosing_session.schedule",
        resource_type="dosing_session",
        resource_id=row.id,
        patient_id=patient.id,
        now=now,
    )
    await _tell_sitter(session, row, sitter, now=now, settings=settings)
    return row


async def _open_for_change(session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID) -> DosingSession:
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    if row.status != SessionStatus.SCHEDULED:
        raise Conflict("dosing_session.not_scheduled", "Only a scheduled session can be moved or cancelled.")
    if await check_ins_of(session, dosing_session_id=row.id):
        raise Conflict("dosing_session.checked_in", "You have already checked in for this session.")
    # A sitter's presence is for this time and this sitter. Moved, it used to carry over (opening a dose
    # days later with nobody attesting) or, with another sitter, block theirs (one presence per session).
    if await attestation(session, dosing_session_id=row.id, kind="presence") is not None:
        raise Conflict(
            "dosing_session.sitter_present",
            "Your sitter has already confirmed they are with you for this session: cancel it and schedule a new one.",
        )
    return row


async def reschedule_session(
    session: AsyncSession,
    *,
    patient: Patient,
    dosing_session_id: uuid.UUID,
    starts_at: datetime,
    sitter_id: uuid.UUID | None,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> DosingSession:
    """Move a session (free), or give it another sitter: links already sent stop working, invites follow."""
    row = await _open_for_change(session, patient=patient, dosing_session_id=dosing_session_id)
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    sitter = await _confirmed_sitter(session, patient, sitter_id or row.sitter_id, settings)
    await _check_time(session, plan, patient, starts_at=starts_at, now=now)
    previous_sitter = await session.get(Sitter, row.sitter_id) if row.sitter_id and row.sitter_id != sitter.id else None
    if previous_sitter is not None:
        await _tell_sitter(session, row, previous_sitter, now=now, settings=settings, cancelled=True)
    await revoke_links(session, now=now, dosing_session_id=row.id)
    row.scheduled_at, row.sitter_id, row.ics_sequence, row.updated_at = starts_at, sitter.id, row.ics_sequence + 1, now
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="dosing_session.reschedule",
        resource_type="dosing_session",
        resource_id=row.id,
        patient_id=patient.id,
        now=now,
    )
    await _tell_sitter(session, row, sitter, now=now, settings=settings)
    return row


async def cancel_session(
    session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, actor: Actor, now: datetime, settings: Settings
) -> DosingSession:
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    await change_status(
        session,
        DosingSession,
        row.id,
        table=SESSION_TRANSITIONS,
        source=row.status,
        target=SessionStatus.CANCELLED,
        actor=actor,
        now=now,
        patient_id=patient.id,
        values={"updated_at": now},
    )
    await revoke_links(session, now=now, dosing_session_id=row.id)
    if row.sitter_id and (sitter := await session.get(Sitter, row.sitter_id)) is not None:
        row.ics_sequence += 1
        await _tell_sitter(session, row, sitter, now=now, settings=settings, cancelled=True)
    await session.refresh(row)
    return row


async def excuse_sitter(session: AsyncSession, *, token: str, actor: Actor, now: datetime) -> DosingSession:
    """The sitter cannot come: the session loses its sitter (its other links stop working) and the patient
    is told, to choose another sitter or move the session."""
    opened = await open_link(session, token=token, purpose=LinkPurpose.EXCUSE, actor=actor, now=now)
    row = await locked_session(session, opened.session_id)  # before spending: links come after the patient and the session
    assert row is not None
    await spend_link(session, token=token, purpose=LinkPurpose.EXCUSE, actor=actor, now=now)
    if row.status != SessionStatus.SCHEDULED or row.sitter_id != opened.sitter.id:
        raise Conflict("dosing_session.not_yours_to_sit", "This session no longer needs you: nothing more to do.")
    row.sitter_id, row.updated_at = None, now
    await session.flush()
    await revoke_links(session, now=now, dosing_session_id=row.id)
    await record_audit_event(
        session,
        actor=actor,
        action="dosing_session.sitter_excused",
        resource_type="dosing_session",
        resource_id=row.id,
        patient_id=row.patient_id,
        now=now,
    )
    contact = await patient_contact(session, row.patient_id)
    await queue_email(
        session,
        to=contact.email,
        template="portal_update",
        context={"recipient_name": contact.full_name},
        now=now,
        dedupe_key=f"sitter_excused:{row.id}:{opened.sitter.id}",
    )
    return row
