"""Dosing sessions: the patient schedules each dose of an active plan with a confirmed sitter, checks in
within the hour before, and unlocks the dose only when every gate holds; the sitter attests presence and,
afterwards, how it ended; the patient reports within 24 h. Serious events pause the plan; reports count
toward releasing the next batch and, at the last session, complete the plan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient
from telehealth.accounts.service import patient_contact
from telehealth.audit.service import Actor, record_audit_event
from telehealth.dosing import inventory, progress
from telehealth.dosing.gates import CheckInFacts, Gate, Pressure, UnlockFacts, check_in_gates, pressure_level, unlock_gates
from telehealth.dosing.models import CheckIn, DosingReport, DosingSession, Sitter, SitterAttestation
from telehealth.dosing.alerts import alert_care_team
from telehealth.dosing.safety import record_serious_event
from telehealth.dosing.sitters import issue_link, open_link, revoke_links, same_name, spend_link
from telehealth.dosing.states import SESSION_TRANSITIONS, LinkPurpose, SessionStatus, SitterStatus
from telehealth.intake.escalations import has_open_crisis, open_crisis_escalation
from telehealth.lib.errors import Conflict, InvalidInput, NotFound, RuleRefused
from telehealth.lib.states import change_status
from telehealth.lib.validation import has_control_characters
from telehealth.notifications.service import queue_email
from telehealth.prescribing.models import PlanBatch, TrochePlan
from telehealth.prescribing.plans import live_plan
from telehealth.prescribing.states import BatchStatus, PlanStatus
from telehealth.scheduling.ics import calendar_invite
from telehealth.settings import Settings

SITTER_STAYS = timedelta(hours=3)  # the dose, about an hour, and two hours after: what the sitter's invite blocks
SCHEDULE_HORIZON = timedelta(days=60)
END_LINK_VALID_AFTER = timedelta(hours=26)  # the end attestation stays open a day after the session's time
SERIOUS_REPORT_ANSWERS = ("emergency_services_called", "fainting", "chest_pain", "suicidal_thoughts")


# --- reading ------------------------------------------------------------------------------------------


async def own_session(session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, lock: bool = False) -> DosingSession:
    found = await session.get(DosingSession, dosing_session_id, with_for_update=lock, populate_existing=True)
    if found is None or found.patient_id != patient.id:
        raise NotFound("dosing_session.not_found", "No session with this id is yours.")
    return found


async def sessions_of(session: AsyncSession, *, plan_id: uuid.UUID) -> list[DosingSession]:
    return list((await session.execute(select(DosingSession).where(DosingSession.plan_id == plan_id).order_by(DosingSession.scheduled_at))).scalars())


async def check_ins_of(session: AsyncSession, *, dosing_session_id: uuid.UUID) -> list[CheckIn]:
    return list((await session.execute(select(CheckIn).where(CheckIn.dosing_session_id == dosing_session_id).order_by(CheckIn.attempt))).scalars())


async def attestation(session: AsyncSession, *, dosing_session_id: uuid.UUID, kind: str) -> SitterAttestation | None:
    return (
        await session.execute(select(SitterAttestation).where(SitterAttestation.dosing_session_id == dosing_session_id, SitterAttestation.kind == kind))
    ).scalar_one_or_none()


async def last_dose_at(session: AsyncSession, *, plan_id: uuid.UUID) -> datetime | None:
    """When the last dose was taken: the newest unlock, unless its report says no troche was used."""
    return await session.scalar(
        select(func.max(DosingSession.unlocked_at))
        .outerjoin(DosingReport, DosingReport.dosing_session_id == DosingSession.id)
        .where(
            DosingSession.plan_id == plan_id, DosingSession.status.in_([SessionStatus.UNLOCKED, SessionStatus.REPORTED]),
            func.coalesce(DosingReport.troches_used, 1) > 0,
        )
    )  # fmt: skip


async def batch_holding(session: AsyncSession, *, plan_id: uuid.UUID, number: int) -> PlanBatch | None:
    return (
        await session.execute(select(PlanBatch).where(PlanBatch.plan_id == plan_id, PlanBatch.first_session <= number, PlanBatch.last_session >= number))
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


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%A %d %B %Y at %H:%M %Z")


async def _active_plan(session: AsyncSession, patient: Patient) -> TrochePlan:
    plan = await live_plan(session, patient_id=patient.id)
    if plan is None:
        raise RuleRefused("dosing.no_plan", "You have no active plan to schedule sessions for.")
    if plan.status == PlanStatus.PAUSED:
        raise RuleRefused("dosing.plan_paused", "Your plan is paused until your prescriber reviews it; no session can be scheduled now.")
    if plan.status != PlanStatus.ACTIVE:
        raise RuleRefused("dosing.plan_not_active", "Your plan starts when your first shipment is delivered.")
    return plan


async def _confirmed_sitter(session: AsyncSession, patient: Patient, sitter_id: uuid.UUID | None) -> Sitter:
    sitter = await session.get(Sitter, sitter_id) if sitter_id else None
    if sitter is None or sitter.patient_id != patient.id:
        raise InvalidInput("request.invalid", "Choose one of your sitters.", fields={"sitter_id": "is not one of your sitters"})
    if sitter.status != SitterStatus.CONFIRMED:
        raise InvalidInput("request.invalid", f"{sitter.full_name} has not signed the sitter agreement.", fields={"sitter_id": "has not confirmed yet"})
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
        earliest = _local(last + timedelta(hours=plan.min_hours_between), patient.timezone)
        raise RuleRefused(
            "dosing.too_soon", f"Your plan needs {plan.min_hours_between} hours between doses: the earliest is {earliest}.",
            fields={"starts_at": f"must be at or after {earliest}"},
        )  # fmt: skip


async def _tell_sitter(
    session: AsyncSession, dosing_session: DosingSession, sitter: Sitter, *, now: datetime, settings: Settings, cancelled: bool = False
) -> None:
    """The sitter's email with a calendar invite: the time and the patient's name, no health details."""
    patient = await session.get(Patient, dosing_session.patient_id)
    assert patient is not None
    contact = await patient_contact(session, patient.id)
    invite = calendar_invite(
        uid=dosing_session.id, sequence=dosing_session.ics_sequence, starts_at=dosing_session.scheduled_at,
        ends_at=dosing_session.scheduled_at + SITTER_STAYS, summary=f"With {contact.full_name} (sitter)",
        description="You will get your link to confirm you are there an hour before.", now=now, cancel=cancelled,
    )  # fmt: skip
    context = {"recipient_name": sitter.full_name, "patient_name": contact.full_name, "when_local": _local(dosing_session.scheduled_at, patient.timezone)}
    if not cancelled:  # with the invite, their way to say they cannot come
        excuse = await issue_link(session, sitter_id=sitter.id, purpose=LinkPurpose.EXCUSE, now=now, expires_at=dosing_session.scheduled_at,
                                  dosing_session_id=dosing_session.id)  # fmt: skip
        context["link_url"] = f"{settings.public_base_url}/sitter/{excuse}"
    await queue_email(
        session, to=sitter.email, template="sitter_session_cancelled" if cancelled else "sitter_session_scheduled", context=context,
        now=now, attachments=[{"filename": "session.ics", "content_type": "text/calendar", "content": invite}],
    )  # fmt: skip


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
    session: AsyncSession, *, patient: Patient, starts_at: datetime, sitter_id: uuid.UUID | None, actor: Actor, now: datetime, settings: Settings
) -> DosingSession:
    """The next dose of the active plan, at a time the interval allows, with a confirmed sitter, once the
    batch holding that dose is delivered."""
    plan = await _active_plan(session, patient)
    taken = await session.scalar(
        select(func.count()).select_from(DosingSession).where(
            DosingSession.plan_id == plan.id, DosingSession.status.in_([SessionStatus.UNLOCKED, SessionStatus.REPORTED])
        )
    )  # fmt: skip
    number = (taken or 0) + 1
    if number > plan.sessions:
        raise RuleRefused("dosing.plan_complete", "Every session of your plan has been taken.")
    batch = await batch_holding(session, plan_id=plan.id, number=number)
    if batch is None or batch.status != BatchStatus.DELIVERED:
        raise RuleRefused("dosing.batch_not_delivered", f"Session {number} can be scheduled once the shipment with its dose is delivered.")
    sitter = await _confirmed_sitter(session, patient, sitter_id)
    await _check_time(session, plan, patient, starts_at=starts_at, now=now)
    row = DosingSession(
        plan_id=plan.id, patient_id=patient.id, sitter_id=sitter.id, number=number, status=SessionStatus.SCHEDULED, scheduled_at=starts_at,
        created_at=now, updated_at=now,
    )  # fmt: skip
    await _insert(session, row)
    await record_audit_event(session, actor=actor, action="dosing_session.schedule", resource_type="dosing_session", resource_id=row.id,
                             patient_id=patient.id, now=now)  # fmt: skip
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
            "dosing_session.sitter_present", "Your sitter has already confirmed they are with you for this session: cancel it and schedule a new one.",
        )  # fmt: skip
    return row


async def reschedule_session(
    session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, starts_at: datetime, sitter_id: uuid.UUID | None,
    actor: Actor, now: datetime, settings: Settings,
) -> DosingSession:
    """Move a session (free), or give it another sitter: links already sent stop working, invites follow."""
    row = await _open_for_change(session, patient=patient, dosing_session_id=dosing_session_id)
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    sitter = await _confirmed_sitter(session, patient, sitter_id or row.sitter_id)
    await _check_time(session, plan, patient, starts_at=starts_at, now=now)
    previous_sitter = await session.get(Sitter, row.sitter_id) if row.sitter_id and row.sitter_id != sitter.id else None
    if previous_sitter is not None:
        await _tell_sitter(session, row, previous_sitter, now=now, settings=settings, cancelled=True)
    await revoke_links(session, now=now, dosing_session_id=row.id)
    row.scheduled_at, row.sitter_id, row.ics_sequence, row.updated_at = starts_at, sitter.id, row.ics_sequence + 1, now
    await session.flush()
    await record_audit_event(session, actor=actor, action="dosing_session.reschedule", resource_type="dosing_session", resource_id=row.id,
                             patient_id=patient.id, now=now)  # fmt: skip
    await _tell_sitter(session, row, sitter, now=now, settings=settings)
    return row


async def cancel_session(session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, actor: Actor, now: datetime, settings: Settings) -> DosingSession:
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    await change_status(session, DosingSession, row.id, table=SESSION_TRANSITIONS, source=row.status, target=SessionStatus.CANCELLED,
                        actor=actor, now=now, patient_id=patient.id, values={"updated_at": now})  # fmt: skip
    await revoke_links(session, now=now, dosing_session_id=row.id)
    if row.sitter_id and (sitter := await session.get(Sitter, row.sitter_id)) is not None:
        row.ics_sequence += 1
        await _tell_sitter(session, row, sitter, now=now, settings=settings, cancelled=True)
    await session.refresh(row)
    return row


# --- before the dose ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckInAnswers:
    systolic: int
    diastolic: int
    pulse: int
    mood: int
    phq9_item9: int
    fasted_two_hours: bool
    no_alcohol_or_sedatives: bool

    def problems(self) -> dict[str, str]:
        limits = {"systolic": (50, 300), "diastolic": (20, 200), "pulse": (20, 250), "mood": (0, 10), "phq9_item9": (0, 3)}
        return {name: f"must be from {low} to {high}" for name, (low, high) in limits.items() if not low <= getattr(self, name) <= high}


@dataclass(frozen=True)
class CheckInOutcome:
    check_in: CheckIn
    gates: list[Gate]
    held: bool
    urgent: bool
    crisis: bool
    recheck_from: datetime | None = None  # when the one blood-pressure re-check may be taken


def _facts(check_in: CheckIn) -> CheckInFacts:
    return CheckInFacts(check_in.checked_in_at, check_in.systolic, check_in.diastolic, check_in.phq9_item9, check_in.fasted_two_hours, check_in.no_alcohol_or_sedatives)


async def _hold(session: AsyncSession, row: DosingSession, *, reason: str, now: datetime) -> None:
    await change_status(session, DosingSession, row.id, table=SESSION_TRANSITIONS, source=SessionStatus.SCHEDULED, target=SessionStatus.HELD,
                        actor=Actor.system(), now=now, patient_id=row.patient_id, values={"held_reason": reason, "updated_at": now})  # fmt: skip
    await revoke_links(session, now=now, dosing_session_id=row.id)


def _attempt(earlier: list[CheckIn], *, now: datetime, settings: Settings) -> int:
    """1 for the first check-in; 2 for the one re-check after a high (not urgent) blood pressure, or a fresh
    check-in when the first has gone stale; anything else is refused."""
    thresholds = settings.thresholds
    if not earlier:
        return 1
    first = earlier[0]
    if len(earlier) == 1:
        high = pressure_level(first.systolic, first.diastolic, thresholds) is Pressure.HOLD
        if high:
            recheck_from = first.checked_in_at + timedelta(minutes=thresholds.bp_recheck_after_minutes)
            if now < recheck_from:
                raise RuleRefused(
                    "check_in.recheck_too_soon", f"Rest, and measure again {thresholds.bp_recheck_after_minutes} minutes after the first reading.",
                    fields={"systolic": "re-check after 5 minutes of rest"}, extra={"recheck_from": recheck_from.isoformat()},
                )  # fmt: skip
            return 2
        if now - first.checked_in_at > timedelta(minutes=thresholds.checkin_valid_minutes):
            return 2
    raise Conflict("check_in.already_done", "You have already checked in for this session.")


async def record_check_in(
    session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, answers: CheckInAnswers, actor: Actor, now: datetime, settings: Settings
) -> CheckInOutcome:
    """Record the check-in and act on it at once: a crisis answer or an urgent blood pressure holds the
    session, pauses the plan and alerts the care team; alcohol, sedatives, not fasting, or a high blood
    pressure on the re-check hold today's session."""
    if problems := answers.problems():
        raise InvalidInput("request.invalid", "Some check-in answers are out of range.", fields=problems)
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    if row.status != SessionStatus.SCHEDULED:
        raise Conflict("dosing_session.not_scheduled", f"This session is {row.status}: there is nothing to check in for.")
    thresholds = settings.thresholds
    if not row.scheduled_at - timedelta(minutes=thresholds.checkin_valid_minutes) <= now <= row.scheduled_at + timedelta(minutes=thresholds.unlock_late_minutes):
        raise RuleRefused("check_in.outside_window", f"Check in during the {thresholds.checkin_valid_minutes} minutes before your session.")
    attempt = _attempt(await check_ins_of(session, dosing_session_id=row.id), now=now, settings=settings)
    check_in = CheckIn(dosing_session_id=row.id, attempt=attempt, checked_in_at=now, **answers.__dict__)
    session.add(check_in)
    await session.flush()
    await record_audit_event(session, actor=actor, action="dosing_session.check_in", resource_type="dosing_session", resource_id=row.id,
                             patient_id=patient.id, now=now)  # fmt: skip
    gates = check_in_gates(_facts(check_in), thresholds)
    codes = {gate.code for gate in gates}
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    urgent, crisis = "gate.blood_pressure_urgent" in codes, "gate.crisis" in codes
    if crisis:
        await open_crisis_escalation(session, patient_id=patient.id, rule_ids=["dosing.check_in.phq9_9"], actor=actor, now=now, settings=settings)
    if urgent or crisis:
        reasons = [*(["blood_pressure_urgent"] if urgent else []), *(["suicidal_thoughts"] if crisis else [])]
        await _hold(session, row, reason=reasons[0], now=now)
        await record_serious_event(session, plan, source="check_in", reasons=reasons, now=now, dosing_session_id=row.id)
        return CheckInOutcome(check_in, gates, held=True, urgent=urgent, crisis=crisis)
    held_for = [code for code in ("gate.alcohol_or_sedatives", "gate.not_fasting") if code in codes]
    if "gate.blood_pressure_high" in codes and attempt == 2:  # still high on the one re-check: not today
        held_for.append("gate.blood_pressure_high")
    if held_for:
        await _hold(session, row, reason=held_for[0].removeprefix("gate."), now=now)
        return CheckInOutcome(check_in, gates, held=True, urgent=False, crisis=False)
    recheck_from = check_in.checked_in_at + timedelta(minutes=thresholds.bp_recheck_after_minutes) if gates else None
    return CheckInOutcome(check_in, gates, held=False, urgent=False, crisis=False, recheck_from=recheck_from)


async def attest_presence(session: AsyncSession, *, token: str, typed_name: str, actor: Actor, now: datetime) -> str:
    """The sitter, through their one-time presence link, says they are with the patient. Answers the token
    of their next link: the timer, then the end attestation."""
    opened = await open_link(session, token=token, purpose=LinkPurpose.PRESENCE, now=now)
    row = await session.get(DosingSession, opened.link.dosing_session_id, with_for_update=True)
    assert row is not None
    if row.sitter_id != opened.sitter.id or opened.sitter.status != SitterStatus.CONFIRMED:
        raise Conflict("sitter_link.not_this_sitter", "This session now has another sitter: this link no longer applies.")
    if row.status != SessionStatus.SCHEDULED:
        raise Conflict("dosing_session.not_scheduled", "This session is no longer waiting for a sitter.")
    if not same_name(typed_name, opened.sitter.full_name):
        raise InvalidInput("request.invalid", "Type your full name to confirm.", fields={"typed_name": f"type it as given: {opened.sitter.full_name}"})
    await spend_link(session, token=token, purpose=LinkPurpose.PRESENCE, now=now)
    session.add(SitterAttestation(
        dosing_session_id=row.id, sitter_id=opened.sitter.id, kind="presence", typed_name=" ".join(typed_name.split()), attested_at=now,
        ip=actor.ip, user_agent=(actor.user_agent or "")[:400] or None,
    ))  # fmt: skip
    await session.flush()
    await record_audit_event(session, actor=actor, action="dosing_session.sitter_present", resource_type="dosing_session", resource_id=row.id,
                             patient_id=row.patient_id, now=now)  # fmt: skip
    return await issue_link(session, sitter_id=opened.sitter.id, purpose=LinkPurpose.END, now=now, expires_at=row.scheduled_at + END_LINK_VALID_AFTER,
                            dosing_session_id=row.id)  # fmt: skip


async def excuse_sitter(session: AsyncSession, *, token: str, actor: Actor, now: datetime) -> DosingSession:
    """The sitter cannot come: the session loses its sitter (its other links stop working) and the patient
    is told, to choose another sitter or move the session."""
    opened = await spend_link(session, token=token, purpose=LinkPurpose.EXCUSE, now=now)
    row = await session.get(DosingSession, opened.link.dosing_session_id, with_for_update=True)
    assert row is not None
    if row.status != SessionStatus.SCHEDULED or row.sitter_id != opened.sitter.id:
        raise Conflict("dosing_session.not_yours_to_sit", "This session no longer needs you: nothing more to do.")
    row.sitter_id, row.updated_at = None, now
    await session.flush()
    await revoke_links(session, now=now, dosing_session_id=row.id)
    await record_audit_event(session, actor=actor, action="dosing_session.sitter_excused", resource_type="dosing_session", resource_id=row.id,
                             patient_id=row.patient_id, now=now)  # fmt: skip
    contact = await patient_contact(session, row.patient_id)
    await queue_email(session, to=contact.email, template="portal_update", context={"recipient_name": contact.full_name},
                      now=now, dedupe_key=f"sitter_excused:{row.id}:{opened.sitter.id}")  # fmt: skip
    return row


async def unlock_facts(session: AsyncSession, row: DosingSession, plan: TrochePlan, *, now: datetime) -> UnlockFacts:
    batch = await batch_holding(session, plan_id=plan.id, number=row.number)
    check_ins = await check_ins_of(session, dosing_session_id=row.id)
    sitter = await session.get(Sitter, row.sitter_id) if row.sitter_id else None
    presence = await attestation(session, dosing_session_id=row.id, kind="presence")
    return UnlockFacts(
        now=now, scheduled_at=row.scheduled_at, session_status=row.status, plan_status=plan.status,
        batch_delivered=batch is not None and batch.status == BatchStatus.DELIVERED, last_dose_at=await last_dose_at(session, plan_id=plan.id),
        min_hours_between=plan.min_hours_between, check_in=_facts(check_ins[-1]) if check_ins else None,
        sitter_confirmed=sitter is not None and sitter.status == SitterStatus.CONFIRMED,
        sitter_present=presence is not None and sitter is not None and presence.sitter_id == sitter.id,
        crisis_open=await has_open_crisis(session, patient_id=row.patient_id),
    )  # fmt: skip


async def unlock_session(session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, actor: Actor, now: datetime, settings: Settings) -> DosingSession:
    """Open the dose when every gate holds, else answer every gate that failed. Idempotent and race-safe:
    the status moves by compare-and-swap, so two taps unlock once and both see it unlocked."""
    # FOR UPDATE: a second tap waits here, then reads the session unlocked and answers it. Without the lock
    # it read the session still scheduled, then the first tap's unlock as "the last dose": gate.too_soon.
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    if row.status == SessionStatus.UNLOCKED:
        return row
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    if failed := unlock_gates(await unlock_facts(session, row, plan, now=now), settings.thresholds):
        raise RuleRefused(
            "dosing.unlock_refused", f"The dose stays locked: {len(failed)} check{'s' if len(failed) > 1 else ''} not met.",
            fields={"gates": ", ".join(gate.code for gate in failed)},
            extra={"gates": [{"code": gate.code, "detail": gate.detail} for gate in failed]},
        )  # fmt: skip
    try:
        await change_status(session, DosingSession, row.id, table=SESSION_TRANSITIONS, source=SessionStatus.SCHEDULED, target=SessionStatus.UNLOCKED,
                            actor=actor, now=now, patient_id=patient.id, values={"unlocked_at": now, "updated_at": now})  # fmt: skip
    except Conflict:
        pass  # another tap won; below it reads the session as that tap left it
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id)
    if row.status != SessionStatus.UNLOCKED:
        raise Conflict("dosing_session.status_changed", f"This session is {row.status} now.")
    return row


# --- after the dose -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportAnswers:
    completed: bool
    troches_used: int
    nausea: bool = False
    vomiting: bool = False
    dizziness: bool = False
    dissociation: int = 0
    headache: bool = False
    bladder_symptoms: bool = False
    fainting: bool = False
    chest_pain: bool = False
    suicidal_thoughts: bool = False
    emergency_services_called: bool = False
    other_side_effects: str | None = None
    systolic: int | None = None
    diastolic: int | None = None
    notes: str | None = None
    problems_found: dict[str, str] = field(default_factory=dict)

    def problems(self) -> dict[str, str]:
        problems = dict(self.problems_found)
        if not 0 <= self.troches_used <= 100:
            problems["troches_used"] = "must be from 0 to 100"
        if not 0 <= self.dissociation <= 10:
            problems["dissociation"] = "must be from 0 to 10"
        if (self.systolic is None) != (self.diastolic is None):
            problems["systolic" if self.systolic is None else "diastolic"] = "give both numbers of the blood pressure, or neither"
        elif self.systolic is not None and not (50 <= self.systolic <= 300 and 20 <= (self.diastolic or 0) <= 200):
            problems["systolic"] = "is not a blood pressure we can record"
        for name, longest in (("other_side_effects", 1000), ("notes", 4000)):
            value = getattr(self, name) or ""
            if len(value) > longest or has_control_characters(value.replace("\n", " ").replace("\r", " ")):
                problems[name] = f"must be plain text of at most {longest} characters"
        return problems


def serious_reasons(answers: ReportAnswers, settings: Settings) -> list[str]:
    reasons = [name for name in SERIOUS_REPORT_ANSWERS if getattr(answers, name)]
    if answers.systolic is not None and answers.diastolic is not None and pressure_level(answers.systolic, answers.diastolic, settings.thresholds) is Pressure.URGENT:
        reasons.append("blood_pressure_urgent")
    return reasons


async def file_report(
    session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, answers: ReportAnswers, actor: Actor, now: datetime, settings: Settings
) -> DosingReport:
    """The patient's report. A serious event pauses the plan; the count of troches is checked; the next
    batch is released when due; the last session's report completes the plan."""
    if problems := answers.problems():
        raise InvalidInput("request.invalid", "Some answers of the report need another look.", fields=problems)
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    if row.status == SessionStatus.REPORTED:
        raise Conflict("dosing_session.already_reported", "This session is reported already.")
    if row.status != SessionStatus.UNLOCKED:
        raise RuleRefused("dosing_session.not_unlocked", "Only a session that was unlocked can be reported.")
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    await change_status(session, DosingSession, row.id, table=SESSION_TRANSITIONS, source=SessionStatus.UNLOCKED, target=SessionStatus.REPORTED,
                        actor=actor, now=now, patient_id=patient.id, values={"updated_at": now})  # fmt: skip
    values = {name: getattr(answers, name) for name in DosingReport.model_fields if name not in ("dosing_session_id", "reported_at")}
    values["other_side_effects"] = (answers.other_side_effects or "").strip() or None
    values["notes"] = (answers.notes or "").strip() or None
    report = DosingReport(dosing_session_id=row.id, reported_at=now, **values)
    session.add(report)
    await session.flush()
    if reasons := serious_reasons(answers, settings):
        if answers.suicidal_thoughts:
            await open_crisis_escalation(session, patient_id=patient.id, rule_ids=["dosing.report.suicidal_thoughts"], actor=actor, now=now, settings=settings)
        await record_serious_event(session, plan, source="report", reasons=reasons, now=now, dosing_session_id=row.id)
    await inventory.check_after_report(session, plan, units_prescribed=units_for(plan, row.number), troches_used=answers.troches_used, now=now)
    await session.refresh(plan)
    await progress.advance(session, plan, now=now)
    return report


OUTCOMES = ("alert_and_safe", "event")


async def attest_end(
    session: AsyncSession, *, token: str, typed_name: str, outcome: str, event_description: str, emergency_services_called: bool,
    actor: Actor, now: datetime,
) -> SitterAttestation:
    """The sitter says how the session ended: the patient alert and safe, or an event (what, and whether
    emergency services were called; a call pauses the plan)."""
    opened = await open_link(session, token=token, purpose=LinkPurpose.END, now=now)
    row = await session.get(DosingSession, opened.link.dosing_session_id)
    assert row is not None
    if row.status not in (SessionStatus.UNLOCKED, SessionStatus.REPORTED):
        raise RuleRefused("dosing_session.not_unlocked", "The dose has not been unlocked yet: come back to this page after it.")
    problems = {}
    if outcome not in OUTCOMES:
        problems["outcome"] = "choose: alert and safe, or something happened"
    if outcome == "event" and not event_description.strip():
        problems["event_description"] = "say what happened"
    if len(event_description) > 2000 or has_control_characters(event_description.replace("\n", " ").replace("\r", " ")):
        problems["event_description"] = "must be plain text of at most 2000 characters"
    if not same_name(typed_name, opened.sitter.full_name):
        problems["typed_name"] = f"type your full name as given: {opened.sitter.full_name}"
    if problems:
        raise InvalidInput("request.invalid", "The end of the session is not recorded yet.", fields=problems)
    await spend_link(session, token=token, purpose=LinkPurpose.END, now=now)
    ended = SitterAttestation(
        dosing_session_id=row.id, sitter_id=opened.sitter.id, kind="end", typed_name=" ".join(typed_name.split()), outcome=outcome,
        event_description=event_description.strip() or None, emergency_services_called=emergency_services_called and outcome == "event",
        attested_at=now, ip=actor.ip, user_agent=(actor.user_agent or "")[:400] or None,
    )  # fmt: skip
    session.add(ended)
    await session.flush()
    await record_audit_event(session, actor=actor, action="dosing_session.sitter_end", resource_type="dosing_session", resource_id=row.id,
                             patient_id=row.patient_id, now=now, reason=outcome)  # fmt: skip
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    if ended.emergency_services_called:
        await record_serious_event(session, plan, source="sitter", reasons=["emergency_services_called"], now=now, dosing_session_id=row.id)
    elif outcome == "event":
        # An event without a 911 call: the care team looks at it, the plan goes on.
        await alert_care_team(session, plan, template="care_team_update", key=f"sitter_event:{row.id}", now=now)
    return ended
