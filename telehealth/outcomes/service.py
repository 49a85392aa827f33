"""Score histories per patient, and the program's outcomes without names: how many patients have a
baseline, a reassessment, a response (half the baseline or less) and a remission, per questionnaire."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.intake.models import QuestionnaireResponse
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.outcomes.charts import Point
from telehealth.prescribing.reassessment import score_change

TRACKED = ("phq9", "gad7")
# At the same instant the intake's answer is the earlier one (the baseline), as in reassessment.score_changes.
IN_ORDER = (col(QuestionnaireResponse.answered_at), col(QuestionnaireResponse.intake_id).is_(None))


async def score_history(session: AsyncSession, *, patient_id: uuid.UUID) -> dict[str, list[Point]]:
    rows = await session.execute(
        select(QuestionnaireResponse.questionnaire, QuestionnaireResponse.answered_at, QuestionnaireResponse.score)
        .where(QuestionnaireResponse.patient_id == patient_id, col(QuestionnaireResponse.questionnaire).in_(TRACKED))
        .order_by(*IN_ORDER)
    )
    history: dict[str, list[Point]] = {key: [] for key in TRACKED}
    for kind, at, score in rows.all():
        history[kind].append(Point(at, score))
    return history


@dataclass(frozen=True)
class OutcomeRow:
    questionnaire: str
    title: str
    with_baseline: int
    reassessed: int
    responded: int
    remitted: int

    def rate(self, count: int) -> str:
        return f"{round(100 * count / self.reassessed)}%" if self.reassessed else "n/a"


async def program_outcomes(session: AsyncSession) -> list[OutcomeRow]:
    """Counts over every patient's baseline and latest answer; no id, name or date leaves this function."""
    rows = await session.execute(
        select(QuestionnaireResponse.patient_id, QuestionnaireResponse.questionnaire, QuestionnaireResponse.score)
        .where(col(QuestionnaireResponse.questionnaire).in_(TRACKED))
        .order_by(col(QuestionnaireResponse.patient_id), *IN_ORDER)
    )
    scores: dict[tuple[str, uuid.UUID], list[int]] = {}
    for patient_id, kind, score in rows.all():
        scores.setdefault((kind, patient_id), []).append(score)
    report = []
    for kind in TRACKED:
        series = [values for (k, _), values in scores.items() if k == kind]
        changes = [change for values in series if len(values) > 1 and (change := score_change(kind, values)) is not None]
        report.append(
            OutcomeRow(
                kind,
                QUESTIONNAIRES[kind].title,
                with_baseline=len(series),
                reassessed=len(changes),
                responded=sum(c.response for c in changes),
                remitted=sum(c.remission for c in changes),
            )
        )
    return report


def outcomes_csv(report: list[OutcomeRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["questionnaire", "patients_with_baseline", "patients_reassessed", "responders", "response_rate", "remitters", "remission_rate"]
    )
    for row in report:
        writer.writerow(
            [row.title, row.with_baseline, row.reassessed, row.responded, row.rate(row.responded), row.remitted, row.rate(row.remitted)]
        )
    return out.getvalue()
