"""HTML pages of the patient's reassessment: PHQ-9 and GAD-7 answered again when the plan needs it, the
crisis page when an answer calls for one, then baseline vs now in plain words and the way to book."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.dosing import reassessment_due
from telehealth.intake.escalations import has_open_crisis
from telehealth.intake.results import CRISIS_RESOURCES
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.prescribing import reassessment
from telehealth.settings import Settings


def _question_label(key: str) -> str:
    """ "phq9_9" -> "PHQ-9, question 9": the refusal names the question as the patient sees it."""
    for questionnaire in reassessment.REASSESSMENT_QUESTIONNAIRES:
        for number, item in enumerate(questionnaire.items, start=1):
            if item.key == key:
                return f"{questionnaire.title}, question {number}"
    return key


async def _page(
    db_session: AsyncSession, patient: Patient, *, values: dict[str, dict[str, str]] | None = None, error: DomainError | None = None
) -> Template:
    due = await reassessment_due.due_reassessment(db_session, patient_id=patient.id)
    fields = error.fields if error else {}
    context: dict[str, Any] = {
        "due": due,
        "questionnaires": reassessment.REASSESSMENT_QUESTIONNAIRES,
        "values": values or {},
        "error": error.detail if error else None,
        "fields": fields,
        "field_labels": {_question_label(key): reason for key, reason in fields.items()},
    }
    if due is not None and due.answered:
        context |= {
            "changes": await reassessment.changes_in_words(db_session, patient_id=patient.id),
            "risk_words": list(
                dict.fromkeys(r.patient_text for r in await reassessment.latest_risk_reasons(db_session, patient_id=patient.id))
            ),
            "booking_open": not await has_open_crisis(db_session, patient_id=patient.id),
            "book_path": reassessment.BOOK_REASSESSMENT,
        }
    return Template("prescribing/reassessment.html", context=context, status_code=error.status_code if error else 200)


class ReassessmentPagesController(Controller):
    include_in_schema = False
    guards = [requires_role(Role.PATIENT)]

    @get("/reassessment")
    async def show(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template:
        """The questionnaires when a reassessment is due; once answered, the scores and the way to book."""
        return await _page(db_session, await own_patient_record(db_session, viewer=signed_in))

    @post("/reassessment")
    async def answer(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        values = {q.key: await form_fields(request, *(item.key for item in q.items)) for q in reassessment.REASSESSMENT_QUESTIONNAIRES}
        answered = await attempt(
            db_session,
            reassessment_due.answer_reassessment(
                db_session, patient=patient, answers=values, actor=actor, now=clock.now(), settings=settings
            ),
        )
        if isinstance(answered, DomainError):
            return await _page(db_session, patient, values=values, error=answered)
        if answered.crisis:  # crisis resources on the very next page, before the scores
            return Template("prescribing/reassessment_crisis.html", context={"resources": CRISIS_RESOURCES, "next_path": "/reassessment"})
        return Redirect(path="/reassessment")
