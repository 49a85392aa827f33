"""Before the dose: the check-in in the hour before (acted on at once: a crisis answer or an urgent blood
pressure holds the session and pauses the plan), the sitter's presence through their one-time link, and
unlock, which opens the dose only when every gate of gates.py holds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient
from telehealth.audit.service import change_status, record_audit_event
from telehealth.dosing.alerts import alert_care_team
from telehealth.dosing.gates import CheckInFacts, Gate, Pressure, UnlockFacts, check_in_gates, pressure_level, unlock_gates
from telehealth.dosing.models import CheckIn, DosingSession, Sitter, SitterAttestation
from telehealth.dosing.safety import record_serious_event
from telehealth.dosing.sessions import attestation, batch_holding, check_ins_of, last_dose_at, locked_session, own_session
from telehealth.dosing.sitter_checks import flag_for_prescriber, is_verified, same_as_patient
from telehealth.dosing.sitter_mail import email_sitter
from telehealth.dosing.sitters import issue_link, open_link, revoke_links, same_name, spend_link
from telehealth.dosing.states import SESSION_TRANSITIONS, LinkPurpose, SessionStatus, SitterStatus
from telehealth.intake.escalations import has_open_contact_request, has_open_crisis, open_contact_request, open_crisis_escalation
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, RuleRefused
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.states import BatchStatus
from telehealth.settings import ClinicalThresholds, Settings

END_LINK_VALID_AFTER = timedelta(hours=26)  # the end attestation stays open a day after the session's time


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
    care_team_contact: bool = False  # PHQ-9 item 9 of 1 or 2: held, the care team asked to call, the plan goes on
    recheck_from: datetime | None = None  # when the one blood-pressure re-check may be taken


def recheck_time(first: CheckIn, thresholds: ClinicalThresholds) -> datetime:
    """When the one blood-pressure re-check may be taken: the rest time after the first reading, rounded up to
    the whole minute, because the screen shows minutes (a re-check offered "from 01:33" must work at 01:33)."""
    earliest = first.checked_in_at + timedelta(minutes=thresholds.bp_recheck_after_minutes)
    return (
        earliest
        if earliest == earliest.replace(second=0, microsecond=0)
        else earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)
    )


def _facts(check_in: CheckIn) -> CheckInFacts:
    return CheckInFacts(
        check_in.checked_in_at,
        check_in.systolic,
        check_in.diastolic,
        check_in.phq9_item9,
        check_in.fasted_two_hours,
        check_in.no_alcohol_or_sedatives,
    )


async def _hold(session: AsyncSession, row: DosingSession, *, reason: str, now: datetime) -> None:
    """Not today: the session is held, its links stop working, and the sitter gets the invite's
    cancellation (never the reason: that is health data)."""
    await change_status(
        session,
        DosingSession,
        row.id,
        table=SESSION_TRANSITIONS,
        source=SessionStatus.SCHEDULED,
        target=SessionStatus.HELD,
        actor=Actor.system(),
        now=now,
        patient_id=row.patient_id,
        values={"held_reason": reason, "ics_sequence": row.ics_sequence + 1, "updated_at": now},
    )
    await revoke_links(session, now=now, dosing_session_id=row.id)
    await session.refresh(row)
    if row.sitter_id and (sitter := await session.get(Sitter, row.sitter_id)) is not None:
        await email_sitter(session, row, sitter, change="cancelled", now=now)


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
            recheck_from = recheck_time(first, thresholds)
            if now < recheck_from:
                raise RuleRefused(
                    "check_in.recheck_too_soon",
                    f"Rest, and measure again {thresholds.bp_recheck_after_minutes} minutes after the first reading.",
                    fields={"systolic": f"Measure again from {thresholds.bp_recheck_after_minutes} minutes after the first reading."},
                    extra={"recheck_from": recheck_from.isoformat()},
                )
            return 2
        if now - first.checked_in_at > timedelta(minutes=thresholds.checkin_valid_minutes):
            return 2
    raise Conflict("check_in.already_done", "You have already checked in for this session.")


async def record_check_in(
    session: AsyncSession,
    *,
    patient: Patient,
    dosing_session_id: uuid.UUID,
    answers: CheckInAnswers,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> CheckInOutcome:
    """Record the check-in and act on it at once: a crisis answer or an urgent blood pressure holds the
    session, pauses the plan and alerts the care team; alcohol, sedatives, not fasting, or a high blood
    pressure on the re-check hold today's session. PHQ-9 item 9 of 1 or 2 holds it and asks the care team to
    call (no pause: the graded answer of DOMAIN.md); 3 is the crisis path."""
    if problems := answers.problems():
        raise InvalidInput("request.invalid", "Some check-in answers are out of range.", fields=problems)
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    if row.status != SessionStatus.SCHEDULED:
        raise Conflict("dosing_session.not_scheduled", f"This session is {row.status}: there is nothing to check in for.")
    thresholds = settings.thresholds
    if (
        not row.scheduled_at - timedelta(minutes=thresholds.checkin_valid_minutes)
        <= now
        <= row.scheduled_at + timedelta(minutes=thresholds.unlock_late_minutes)
    ):
        raise RuleRefused("check_in.outside_window", f"Check in during the {thresholds.checkin_valid_minutes} minutes before your session.")
    attempt = _attempt(await check_ins_of(session, dosing_session_id=row.id), now=now, settings=settings)
    check_in = CheckIn(dosing_session_id=row.id, attempt=attempt, checked_in_at=now, **answers.__dict__)
    session.add(check_in)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="dosing_session.check_in",
        resource_type="dosing_session",
        resource_id=row.id,
        patient_id=patient.id,
        now=now,
    )
    gates = check_in_gates(_facts(check_in), thresholds)
    codes = {gate.code for gate in gates}
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    urgent, crisis = "gate.blood_pressure_urgent" in codes, "gate.crisis" in codes
    escalated = crisis and await open_crisis_escalation(
        session, patient_id=patient.id, rule_ids=["dosing.check_in.phq9_9"], actor=actor, now=now, settings=settings
    )
    if urgent or crisis:
        reasons = [*(["blood_pressure_urgent"] if urgent else []), *(["suicidal_thoughts"] if crisis else [])]
        await _hold(session, row, reason=reasons[0], now=now)
        await record_serious_event(
            session, plan, source="check_in", reasons=reasons, now=now, dosing_session_id=row.id, alert=not escalated
        )
        return CheckInOutcome(check_in, gates, held=True, urgent=urgent, crisis=crisis)
    if "gate.care_team_contact" in codes:
        await _hold(session, row, reason="care_team_contact", now=now)
        requested = await open_contact_request(
            session, patient_id=patient.id, rule_ids=["dosing.check_in.phq9_9_some_days"], actor=actor, now=now
        )
        if requested is not None:
            await alert_care_team(session, plan, template="staff_escalation", key=f"contact_request:{requested}", now=now)
        return CheckInOutcome(check_in, gates, held=True, urgent=False, crisis=False, care_team_contact=True)
    held_for: list[str] = [code for code in ("gate.alcohol_or_sedatives", "gate.not_fasting") if code in codes]
    if "gate.blood_pressure_high" in codes and attempt == 2:  # still high on the one re-check: not today
        held_for.append("gate.blood_pressure_high")
    if held_for:
        await _hold(session, row, reason=held_for[0].removeprefix("gate."), now=now)
        return CheckInOutcome(check_in, gates, held=True, urgent=False, crisis=False)
    recheck_from = recheck_time(check_in, thresholds) if gates else None
    return CheckInOutcome(check_in, gates, held=False, urgent=False, crisis=False, recheck_from=recheck_from)


async def attest_presence(session: AsyncSession, *, token: str, typed_name: str, actor: Actor, now: datetime) -> str:
    """The sitter, through their one-time presence link, says they are with the patient. Answers the token
    of their next link: the timer, then the end attestation."""
    opened = await open_link(session, token=token, purpose=LinkPurpose.PRESENCE, actor=actor, now=now)
    row = await locked_session(session, opened.session_id)
    assert row is not None
    if row.sitter_id != opened.sitter.id or opened.sitter.status != SitterStatus.CONFIRMED:
        raise Conflict("sitter_link.not_this_sitter", "This session now has another sitter: this link no longer applies.")
    if row.status != SessionStatus.SCHEDULED:
        raise Conflict("dosing_session.not_scheduled", "This session is no longer waiting for a sitter.")
    if not same_name(typed_name, opened.sitter.full_name):
        raise InvalidInput(
            "request.invalid", "Type your full name to confirm.", fields={"typed_name": f"type it as given: {opened.sitter.full_name}"}
        )
    await spend_link(session, token=token, purpose=LinkPurpose.PRESENCE, actor=actor, now=now)
    present = SitterAttestation(
        dosing_session_id=row.id,
        sitter_id=opened.sitter.id,
        kind="presence",
        typed_name=" ".join(typed_name.split()),
        attested_at=now,
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:400] or None,
        same_as_patient=await same_as_patient(session, patient_id=row.patient_id, actor=actor, now=now),
    )
    session.add(present)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="dosing_session.sitter_present",
        resource_type="dosing_session",
        resource_id=row.id,
        patient_id=row.patient_id,
        now=now,
    )
    plan = await session.get(TrochePlan, row.plan_id)
    assert plan is not None
    await flag_for_prescriber(session, present, plan, now=now)
    return await issue_link(
        session,
        sitter_id=opened.sitter.id,
        purpose=LinkPurpose.END,
        now=now,
        expires_at=row.scheduled_at + END_LINK_VALID_AFTER,
        dosing_session_id=row.id,
    )


async def unlock_facts(session: AsyncSession, row: DosingSession, plan: TrochePlan, *, now: datetime, settings: Settings) -> UnlockFacts:
    batch = await batch_holding(session, plan_id=plan.id, number=row.number)
    check_ins = await check_ins_of(session, dosing_session_id=row.id)
    sitter = await session.get(Sitter, row.sitter_id) if row.sitter_id else None
    presence = await attestation(session, dosing_session_id=row.id, kind="presence")
    return UnlockFacts(
        now=now,
        scheduled_at=row.scheduled_at,
        session_status=row.status,
        plan_status=plan.status,
        batch_delivered=batch is not None and batch.status == BatchStatus.DELIVERED,
        last_dose_at=await last_dose_at(session, plan_id=plan.id),
        min_hours_between=plan.min_hours_between,
        check_in=_facts(check_ins[-1]) if check_ins else None,
        sitter_confirmed=sitter is not None and sitter.status == SitterStatus.CONFIRMED,
        sitter_verified=sitter is not None and is_verified(sitter, settings),
        sitter_present=presence is not None and sitter is not None and presence.sitter_id == sitter.id,
        crisis_open=await has_open_crisis(session, patient_id=row.patient_id),
        contact_requested=await has_open_contact_request(session, patient_id=row.patient_id),
    )


async def unlock_session(
    session: AsyncSession, *, patient: Patient, dosing_session_id: uuid.UUID, actor: Actor, now: datetime, settings: Settings
) -> DosingSession:
    """Open the dose when every gate holds, else answer every gate that failed. Idempotent and race-safe:
    the status moves by compare-and-swap, so two taps unlock once and both see it unlocked."""
    # The patient, then the session, locked (accounts/locks.py): a second tap waits here, then reads the
    # session unlocked and answers it; a pause or a crisis escalation committed meanwhile is read below.
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id, lock=True)
    if row.status == SessionStatus.UNLOCKED:
        return row
    plan = await session.get(TrochePlan, row.plan_id, populate_existing=True)
    assert plan is not None
    if failed := unlock_gates(await unlock_facts(session, row, plan, now=now, settings=settings), settings.thresholds):
        raise RuleRefused(
            "dosing.unlock_refused",
            f"The dose stays locked until {'these checks are' if len(failed) > 1 else 'this check is'} met",
            fields={"gates": ", ".join(gate.code for gate in failed)},
            extra={"gates": [{"code": gate.code, "detail": gate.detail} for gate in failed]},
        )
    try:
        await change_status(
            session,
            DosingSession,
            row.id,
            table=SESSION_TRANSITIONS,
            source=SessionStatus.SCHEDULED,
            target=SessionStatus.UNLOCKED,
            actor=actor,
            now=now,
            patient_id=patient.id,
            values={"unlocked_at": now, "updated_at": now},
        )
    except Conflict:
        pass  # another tap won; below it reads the session as that tap left it
    row = await own_session(session, patient=patient, dosing_session_id=dosing_session_id)
    if row.status != SessionStatus.UNLOCKED:
        raise Conflict("dosing_session.status_changed", f"This session is {row.status} now.")
    return row
