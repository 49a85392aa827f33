"""A reassessment falls due every 6 reported sessions (or at the plan's end), and is answered once per checkpoint."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.locks import lock_patient
from telehealth.accounts.models import Patient
from telehealth.audit.service import record_audit_event
from telehealth.db import driver
from telehealth.db.driver import Record
from telehealth.dosing.inventory import sessions_reported
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.intake.models import QuestionnaireResponse
from telehealth.intake.screening import suicide_risk_reasons
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, RuleRefused
from telehealth.prescribing.models import ReassessmentAnswer
from telehealth.prescribing.plans import newest_signed_plan
from telehealth.prescribing.reassessment import ANSWERED_ACTION, REASSESSMENT_QUESTIONNAIRES
from telehealth.prescribing.states import PlanStatus
from telehealth.settings import Settings

REASSESS_EVERY_SESSIONS = 6


@dataclass(frozen=True)
class DueReassessment:
    plan_id: uuid.UUID
    checkpoint: int  # the session count at which it fell due
    answered: bool  # the questionnaires of this checkpoint are already in


_ANSWERED = "SELECT EXISTS (SELECT FROM reassessment_answer WHERE plan_id = $1 AND checkpoint = $2)"


async def _checkpoint(session: AsyncSession, plan: Record) -> int | None:
    if plan["status"] == PlanStatus.COMPLETED:
        return int(plan["sessions"])
    if plan["status"] not in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        return None
    reported = await sessions_reported(session, plan_id=plan["id"], through_session=plan["sessions"])
    return reported // REASSESS_EVERY_SESSIONS * REASSESS_EVERY_SESSIONS or None


async def due_reassessment(session: AsyncSession, *, patient_id: uuid.UUID, lock: bool = False) -> DueReassessment | None:
    """The reassessment the patient's newest plan needs now, or None. `lock` holds the plan row, so two
    answers to the same checkpoint take turns and the second sees the first."""
    return await due_for_plan(session, await newest_signed_plan(session, patient_id=patient_id, lock=lock))


async def due_for_plan(session: AsyncSession, plan: Record | None) -> DueReassessment | None:
    """The same for a plan the caller has read already (prescribing.plans.newest_signed_plan): the patient's
    home reads it for its own steps first. The home and the booking gate ask on every visit: on the driver."""
    if plan is None or (checkpoint := await _checkpoint(session, plan)) is None:
        return None
    return DueReassessment(plan["id"], checkpoint, bool(await driver.fetchval(session, _ANSWERED, plan["id"], checkpoint)))


async def needs_reassessment(session: AsyncSession, *, patient_id: uuid.UUID) -> bool:
    """A reassessment is due after the plan's last session (the plan completed) or every 6 reported sessions."""
    return await due_reassessment(session, patient_id=patient_id) is not None


@dataclass(frozen=True)
class ReassessmentAnswered:
    scores: dict[str, int]
    crisis: bool  # show crisis resources on the very next page


async def answer_reassessment(
    session: AsyncSession, *, patient: Patient, answers: Mapping[str, Mapping[str, Any]], actor: Actor, now: datetime, settings: Settings
) -> ReassessmentAnswered:
    """Store the PHQ-9 and GAD-7 of a due reassessment (intake_id NULL, the intake's version and scoring).

    Refuses when none is due (422 reassessment.not_due), when this checkpoint is answered already (409
    reassessment.already_answered) and incomplete or out-of-range answers (422 naming each field). A crisis
    answer takes the intake's path: an escalation opens at once and the care team is alerted."""
    await lock_patient(session, patient.id)  # before the plan: the order of accounts/locks.py
    due = await due_reassessment(session, patient_id=patient.id, lock=True)
    if due is None:
        raise RuleRefused(
            "reassessment.not_due", "No reassessment is due now: it comes after your plan's last session, or every 6 sessions."
        )
    if due.answered:
        raise Conflict(
            "reassessment.already_answered",
            "You have already answered these questionnaires for this reassessment; your care team has them.",
        )
    checked: dict[str, dict[str, int]] = {}
    fields: dict[str, str] = {}
    for questionnaire in REASSESSMENT_QUESTIONNAIRES:
        try:
            checked[questionnaire.key] = questionnaire.validate(answers.get(questionnaire.key) or {})
        except InvalidInput as refusal:
            fields |= refusal.fields
    if fields:
        raise InvalidInput("reassessment.invalid", "Some answers need another look.", fields=fields)
    scores: dict[str, int] = {}
    for questionnaire in REASSESSMENT_QUESTIONNAIRES:
        score = scores[questionnaire.key] = questionnaire.score(checked[questionnaire.key])
        session.add(
            QuestionnaireResponse(
                patient_id=patient.id,
                intake_id=None,
                questionnaire=questionnaire.key,
                version=questionnaire.version,
                answers=checked[questionnaire.key],
                score=score,
                band=questionnaire.band(score).label,
                answered_at=now,
            )
        )
    session.add(ReassessmentAnswer(plan_id=due.plan_id, checkpoint=due.checkpoint, patient_id=patient.id, answered_at=now))
    await record_audit_event(
        session,
        actor=actor,
        action=ANSWERED_ACTION,
        resource_type="troche_plan",
        resource_id=due.plan_id,
        patient_id=patient.id,
        reason=f"checkpoint_{due.checkpoint}",
        now=now,
    )
    crisis_reasons = [reason for reason in suicide_risk_reasons(phq9=checked["phq9"], cssrs=None) if reason.crisis]
    if crisis_reasons:
        await open_crisis_escalation(
            session, patient_id=patient.id, rule_ids=[r.rule_id for r in crisis_reasons], actor=actor, now=now, settings=settings
        )
    await session.flush()
    return ReassessmentAnswered(scores, bool(crisis_reasons))
