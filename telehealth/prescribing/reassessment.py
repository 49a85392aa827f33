"""Reassessment: when a plan needs one, the patient's PHQ-9 and GAD-7 answered again, and how the scores
moved since baseline.

Response is a drop of at least 50% from the baseline score; remission is a score below 5 (PHQ-9 and
GAD-7 alike), as DOMAIN.md defines them (`intake.questionnaires.response_rate` / `in_remission`).

A due reassessment is answered once: it is identified by the plan and its checkpoint (the session count
at which it fell due: 6, 12, ... while the plan runs, or the plan's last session once it completed), and
a second answer for the same plan and checkpoint is refused. A 6-session plan answered at its 6th session
is therefore not asked again when it completes; a 12-session plan is asked at 6 and at 12."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.locks import lock_patient
from telehealth.accounts.models import Patient
from telehealth.audit.service import record_audit_event
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.intake.models import QuestionnaireResponse
from telehealth.intake.questionnaires import GAD7, PHQ9, QUESTIONNAIRES, Questionnaire, in_remission, response_rate
from telehealth.intake.screening import Reason, suicide_risk_reasons
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, RuleRefused
from telehealth.prescribing.models import ReassessmentAnswer, TrochePlan
from telehealth.prescribing.pharmacy import sessions_reported
from telehealth.prescribing.states import PlanStatus
from telehealth.settings import Settings

REASSESS_EVERY_SESSIONS = 6
REASSESSMENT_QUESTIONNAIRES: tuple[Questionnaire, ...] = (PHQ9, GAD7)
BOOK_REASSESSMENT = "/appointments/book?type=reassessment"  # the visit that follows the questionnaires
ANSWERED_ACTION = "reassessment.questionnaires.answer"


@dataclass(frozen=True)
class ScoreChange:
    questionnaire: str
    baseline: int
    latest: int
    response: bool
    remission: bool

    @property
    def change_percent(self) -> int:
        return 0 if self.baseline == 0 else round(100 * (self.latest - self.baseline) / self.baseline)


def score_change(questionnaire: str, scores: list[int]) -> ScoreChange | None:
    if len(scores) < 1:
        return None
    baseline, latest = scores[0], scores[-1]
    again = len(scores) > 1  # a baseline alone is neither a response nor a remission
    return ScoreChange(
        questionnaire, baseline, latest, again and response_rate(baseline, latest), again and in_remission(questionnaire, latest)
    )


async def score_changes(session: AsyncSession, *, patient_id: uuid.UUID) -> list[ScoreChange]:
    rows = await session.execute(
        select(QuestionnaireResponse.questionnaire, QuestionnaireResponse.score)
        .where(QuestionnaireResponse.patient_id == patient_id, col(QuestionnaireResponse.questionnaire).in_(["phq9", "gad7"]))
        # at the same instant the intake's answer is the earlier one (the baseline)
        .order_by(col(QuestionnaireResponse.answered_at), col(QuestionnaireResponse.intake_id).is_(None))
    )
    by_kind: dict[str, list[int]] = {}
    for kind, score in rows.all():
        by_kind.setdefault(kind, []).append(score)
    return [change for kind, scores in sorted(by_kind.items()) if (change := score_change(kind, scores)) is not None]


@dataclass(frozen=True)
class DueReassessment:
    plan_id: uuid.UUID
    checkpoint: int  # the session count at which it fell due
    answered: bool  # the questionnaires of this checkpoint are already in


async def _checkpoint(session: AsyncSession, plan: TrochePlan) -> int | None:
    if plan.status == PlanStatus.COMPLETED:
        return plan.sessions
    if plan.status not in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        return None
    reported = await sessions_reported(session, plan_id=plan.id, through_session=plan.sessions)
    return reported // REASSESS_EVERY_SESSIONS * REASSESS_EVERY_SESSIONS or None


async def due_reassessment(session: AsyncSession, *, patient_id: uuid.UUID, lock: bool = False) -> DueReassessment | None:
    """The reassessment the patient's newest plan needs now, or None. `lock` holds the plan row, so two
    answers to the same checkpoint take turns and the second sees the first."""
    newest = (
        select(TrochePlan)
        .where(TrochePlan.patient_id == patient_id, TrochePlan.status != PlanStatus.DRAFT)
        .order_by(col(TrochePlan.created_at).desc())
        .limit(1)
    )
    plan = (await session.execute(newest.with_for_update() if lock else newest)).scalar_one_or_none()
    if plan is None or (checkpoint := await _checkpoint(session, plan)) is None:
        return None
    answered = await session.get(ReassessmentAnswer, (plan.id, checkpoint))
    return DueReassessment(plan.id, checkpoint, answered is not None)


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


# --- How the change is told to the patient -------------------------------------------------------------

ABOUT = {"phq9": "low mood and depression", "gad7": "anxiety"}


@dataclass(frozen=True)
class ChangeInWords:
    questionnaire: str
    title: str
    about: str
    change: ScoreChange
    baseline_band: str
    latest_band: str
    sentences: list[str]


def in_words(change: ScoreChange) -> ChangeInWords:
    """Baseline vs now in plain words: the direction, and what response and remission mean when reached."""
    questionnaire = QUESTIONNAIRES[change.questionnaire]
    difference = change.latest - change.baseline
    if difference == 0:
        sentences = ["That is the same as when you started."]
    elif difference < 0 and change.baseline:
        sentences = [f"That is {-difference} points lower than when you started, a drop of {-change.change_percent}%."]
    else:
        sentences = [f"That is {abs(difference)} points {'lower' if difference < 0 else 'higher'} than when you started."]
    if change.response:
        sentences.append("A drop of half or more is what clinicians call a response to treatment.")
    if change.remission:
        sentences.append("A score below 5 is called remission: your symptoms are now minimal.")
    if not (change.response or change.remission):
        sentences.append("Your prescriber will go over this with you at your reassessment visit.")
    return ChangeInWords(
        change.questionnaire,
        questionnaire.title,
        ABOUT[change.questionnaire],
        change,
        questionnaire.band(change.baseline).label,
        questionnaire.band(change.latest).label,
        sentences,
    )


async def changes_in_words(session: AsyncSession, *, patient_id: uuid.UUID) -> list[ChangeInWords]:
    order = [q.key for q in REASSESSMENT_QUESTIONNAIRES]  # PHQ-9 first, as it was asked
    changes = sorted(await score_changes(session, patient_id=patient_id), key=lambda c: order.index(c.questionnaire))
    return [in_words(change) for change in changes]


async def latest_risk_reasons(session: AsyncSession, *, patient_id: uuid.UUID) -> list[Reason]:
    """The suicide-risk findings of the patient's newest reassessment PHQ-9 (for kind words on the result)."""
    answers = await session.scalar(
        select(QuestionnaireResponse.answers)
        .where(
            QuestionnaireResponse.patient_id == patient_id,
            QuestionnaireResponse.questionnaire == "phq9",
            col(QuestionnaireResponse.intake_id).is_(None),
        )
        .order_by(col(QuestionnaireResponse.answered_at).desc())
        .limit(1)
    )
    return suicide_risk_reasons(phq9=answers, cssrs=None) if answers else []
