"""JSON API of the patient's reassessment."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.dosing import reassessment_due
from telehealth.intake.escalations import has_open_crisis
from telehealth.intake.results import CRISIS_RESOURCES
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.prescribing import reassessment
from telehealth.prescribing.api import QuestionnaireForm, ReassessmentAnswers, ReassessmentBody, ScoreChangeBody
from telehealth.settings import Settings


async def reassessment_body(session: AsyncSession, patient_id: uuid.UUID, *, crisis: bool = False) -> ReassessmentBody:
    due = await reassessment_due.due_reassessment(session, patient_id=patient_id)
    answered = due is not None and due.answered
    forms = (
        []
        if due is None or answered
        else [
            QuestionnaireForm(
                key=q.key,
                version=q.version,
                title=q.title,
                instructions=q.instructions,
                items=[
                    {"key": i.key, "text": i.text, "options": [{"value": o.value, "label": o.label} for o in i.options]} for i in q.items
                ],
            )
            for q in reassessment.REASSESSMENT_QUESTIONNAIRES
        ]
    )
    changes = [
        ScoreChangeBody(
            questionnaire=w.questionnaire,
            baseline=w.change.baseline,
            baseline_band=w.baseline_band,
            latest=w.change.latest,
            latest_band=w.latest_band,
            change_percent=w.change.change_percent,
            response=w.change.response,
            remission=w.change.remission,
            in_words=" ".join(w.sentences),
        )
        for w in (await reassessment.changes_in_words(session, patient_id=patient_id) if answered else [])
    ]
    bookable = answered and not await has_open_crisis(session, patient_id=patient_id)
    return ReassessmentBody(
        due=due is not None,
        answered=answered,
        questionnaires=forms,
        score_changes=changes,
        booking_path=reassessment.BOOK_REASSESSMENT if bookable else None,
        crisis=crisis,
        crisis_resources=CRISIS_RESOURCES if crisis else None,
    )


class ReassessmentApiController(Controller):
    path = "/api/v1/reassessment/questionnaires"
    tags = ["prescribing"]
    guards = [requires_role(Role.PATIENT)]

    @get("/")
    async def read(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> ReassessmentBody:
        """Whether a reassessment is due, the PHQ-9 and GAD-7 to answer, and once answered, baseline vs now."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        return await reassessment_body(db_session, patient.id)

    @post("/", status_code=201)
    async def answer(
        self,
        data: JSONBody[ReassessmentAnswers],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> ReassessmentBody:
        """Answer both questionnaires once per due reassessment; a crisis answer comes back with crisis resources."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        answered = await reassessment_due.answer_reassessment(
            db_session, patient=patient, answers={"phq9": data.phq9, "gad7": data.gad7}, actor=actor, now=clock.now(), settings=settings
        )
        return await reassessment_body(db_session, patient.id, crisis=answered.crisis)
