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
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.intake.models import QuestionnaireResponse
from telehealth.intake.questionnaires import GAD7, PHQ9, QUESTIONNAIRES, Questionnaire, in_remission, response_rate
from telehealth.intake.screening import Reason, suicide_risk_reasons

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
