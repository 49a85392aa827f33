"""Reassessment: when a plan needs one, and how the patient's scores moved since baseline.

Response is a drop of at least 50% from the baseline score; remission is a score below 5 (PHQ-9 and
GAD-7 alike), as DOMAIN.md defines them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.intake.models import QuestionnaireResponse
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.pharmacy import sessions_reported
from telehealth.prescribing.states import PlanStatus

REASSESS_EVERY_SESSIONS = 6
REMISSION_BELOW = 5


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
    response = len(scores) > 1 and baseline > 0 and latest <= baseline / 2
    return ScoreChange(questionnaire, baseline, latest, response, len(scores) > 1 and latest < REMISSION_BELOW)


async def score_changes(session: AsyncSession, *, patient_id: uuid.UUID) -> list[ScoreChange]:
    rows = await session.execute(
        select(QuestionnaireResponse.questionnaire, QuestionnaireResponse.score)
        .where(QuestionnaireResponse.patient_id == patient_id, QuestionnaireResponse.questionnaire.in_(["phq9", "gad7"]))
        .order_by(QuestionnaireResponse.answered_at)
    )  # fmt: skip
    by_kind: dict[str, list[int]] = {}
    for kind, score in rows.all():
        by_kind.setdefault(kind, []).append(score)
    return [change for kind, scores in sorted(by_kind.items()) if (change := score_change(kind, scores)) is not None]


async def needs_reassessment(session: AsyncSession, *, patient_id: uuid.UUID) -> bool:
    """A reassessment is due after the plan's last session (the plan completed) or every 6 reported sessions."""
    plan = (await session.execute(select(TrochePlan).where(TrochePlan.patient_id == patient_id, TrochePlan.status != PlanStatus.DRAFT)
                                  .order_by(TrochePlan.created_at.desc()).limit(1))).scalar_one_or_none()  # fmt: skip
    if plan is None:
        return False
    if plan.status == PlanStatus.COMPLETED:
        return True
    reported = await sessions_reported(session, plan_id=plan.id, through_session=plan.sessions)
    return plan.status in (PlanStatus.ACTIVE, PlanStatus.PAUSED) and reported >= REASSESS_EVERY_SESSIONS
