"""HTML pages of the intake: the steps (saved as the patient goes), consents, the crisis page, the result;
the staff view of an intake; the escalations queue."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import load_patient_for, own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.intake import escalations, service
from telehealth.intake.consents import CONSENT_DOCUMENTS
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.intake.results import CRISIS_RESOURCES, patient_result
from telehealth.intake.sections import CONSENTS_STEP, SECTIONS, STEPS, step_title
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError, NotFound
from telehealth.lib.forms import attempt, form_fields, form_list
from telehealth.settings import Settings

PATIENT_ONLY = [requires_role(Role.PATIENT)]
CARE_TEAM = [requires_role(Role.PRESCRIBER, Role.COORDINATOR, Role.THERAPIST)]  # escalations (operational)
CLINICIANS = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]  # intake answers: the care team (load_patient_for)


async def _step_form(
    db_session: AsyncSession,
    patient: Patient,
    step: str,
    *,
    now: Any,
    values: dict[str, Any] | None = None,
    error: DomainError | None = None,
) -> Template:
    progress = await service.intake_progress(db_session, patient=patient, now=now)
    context: dict[str, Any] = {
        "step": step,
        "steps": STEPS,
        "done": progress.done,
        "error": error.detail if error else None,
        "fields": error.fields if error else {},
        "position": STEPS.index(step) + 1,
    }
    if step == CONSENTS_STEP:
        to_sign = {doc.key for doc in await service.consents_to_sign(db_session, patient_id=patient.id)}
        context |= {
            "documents": list(CONSENT_DOCUMENTS.values()),
            "to_sign": to_sign,
            "expected_name": await service.expected_signature_name(db_session, patient=patient, now=now),
            "labels": {f"typed_name_{doc.key}": f"Your signature on “{doc.title}”" for doc in CONSENT_DOCUMENTS.values()},
        }
        return Template("intake/consents.html", context=context, status_code=error.status_code if error else 200)
    saved = (await service.saved_answers(db_session, progress.intake.id)).get(step, {})
    if step in QUESTIONNAIRES:
        questionnaire = QUESTIONNAIRES[step]
        context |= {
            "questionnaire": questionnaire,
            "values": values or saved.get("answers", {}),
            "labels": {item.key: f"Question {number}" for number, item in enumerate(questionnaire.items, start=1)},
        }
        return Template("intake/questionnaire.html", context=context, status_code=error.status_code if error else 200)
    section = SECTIONS[step]
    if values is None and not saved:
        known = await service.known_from_waiting_list(db_session, patient_id=patient.id)
        saved = {field.name: known[field.name] for field in section.fields if field.name in known}
    context |= {"section": section, "values": values or saved, "labels": {field.name: field.label for field in section.fields}}
    return Template("intake/section.html", context=context, status_code=error.status_code if error else 200)


class IntakePagesController(Controller):
    include_in_schema = False

    @get("/intake", guards=PATIENT_ONLY)
    async def overview(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock]
    ) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        progress = await service.intake_progress(db_session, patient=patient, now=clock.now())
        if progress.intake.status == "submitted":
            return Redirect(path="/intake/result")
        titles = {step: step_title(step) for step in STEPS}
        return Template("intake/overview.html", context={"progress": progress, "steps": STEPS, "titles": titles})

    @get("/intake/result", guards=PATIENT_ONLY)
    async def result(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template | Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        decision = await service.latest_decision(db_session, patient_id=patient.id)
        if decision is None:
            return Redirect(path="/intake")
        return Template("intake/result.html", context={"result": patient_result(decision), "crisis_resources": CRISIS_RESOURCES})

    @post("/intake/submit", guards=PATIENT_ONLY)
    async def submit(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect:
        patient = await own_patient_record(db_session, viewer=signed_in)
        await service.submit_intake(db_session, patient=patient, actor=actor, now=clock.now(), settings=settings)
        return Redirect(path="/intake/result")

    @get("/intake/{step:str}", guards=PATIENT_ONLY)
    async def step_form(
        self,
        step: FromPath[str],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        if step not in STEPS:
            raise NotFound("intake.unknown_step", "There is no such intake step.")
        patient = await own_patient_record(db_session, viewer=signed_in)
        return await _step_form(db_session, patient, step, now=clock.now())

    @post("/intake/{step:str}", guards=PATIENT_ONLY)
    async def save_step(
        self,
        request: Request,
        step: FromPath[str],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        if step not in STEPS:
            raise NotFound("intake.unknown_step", "There is no such intake step.")
        patient = await own_patient_record(db_session, viewer=signed_in)
        now = clock.now()
        if step == CONSENTS_STEP:
            fields = await form_fields(request, "document")
            typed = (await form_fields(request, f"typed_name_{fields['document']}"))[f"typed_name_{fields['document']}"]
            signed = await attempt(
                db_session,
                service.sign_consent(db_session, patient=patient, document=fields["document"], typed_name=typed, actor=actor, now=now),
            )
            if isinstance(signed, DomainError):
                return await _step_form(db_session, patient, step, now=now, error=signed)
            return Redirect(path="/intake/consents")
        if step in QUESTIONNAIRES:
            values: dict[str, Any] = await form_fields(request, *(item.key for item in QUESTIONNAIRES[step].items))
        else:
            section = SECTIONS[step]
            # dict(): typed as the dict[str, Any] it becomes (a checklist's value is a list), not form_fields' dict[str, str]
            values = dict(await form_fields(request, *(f.name for f in section.fields if f.kind != "checklist"), max_length=2100))
            for checklist in (f for f in section.fields if f.kind == "checklist"):
                values[checklist.name] = await form_list(request, checklist.name)
        saved = await attempt(
            db_session, service.save_step(db_session, patient=patient, step=step, answers=values, actor=actor, now=now, settings=settings)
        )
        if isinstance(saved, DomainError):
            return await _step_form(db_session, patient, step, now=now, values=values, error=saved)
        progress = await service.intake_progress(db_session, patient=patient, now=now)
        next_path = f"/intake/{progress.next_step}" if progress.next_step else "/intake"
        if saved.crisis:  # crisis resources on the very next page, before anything else
            return Template("intake/crisis.html", context={"resources": CRISIS_RESOURCES, "next_path": next_path})
        return Redirect(path=next_path)

    @get("/staff/patients/{patient_id:uuid}/intake", guards=CLINICIANS)
    async def staff_view(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="intake.read"
        )
        user = await db_session.get(UserAccount, patient.user_id)
        intake = await service.latest_intake(db_session, patient_id=patient.id)
        if intake is None:
            raise NotFound("intake.not_started", "This patient has not started an intake yet.")
        return Template(
            "intake/staff_view.html",
            context={
                "patient": patient,
                "patient_name": user.full_name if user else "",
                "intake": intake,
                "answers": await service.saved_answers(db_session, intake.id),
                "sections": SECTIONS,
                "questionnaires": QUESTIONNAIRES,
                "decision": await service.latest_decision(db_session, patient_id=patient.id),
                "open_crisis": await escalations.has_open_crisis(db_session, patient_id=patient.id),
            },
        )

    @get("/escalations", guards=CARE_TEAM)
    async def escalations_queue(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        listed = await escalations.open_escalations(db_session, viewer=signed_in, actor=actor, now=clock.now())
        return Template(
            "intake/escalations.html", context={"escalations": listed, "may_record": signed_in.role in escalations.CONTACT_RECORDING_ROLES}
        )

    @post("/escalations/{escalation_id:uuid}/contact", guards=[requires_role(Role.PRESCRIBER, Role.THERAPIST)])
    async def record_contact(
        self,
        request: Request,
        escalation_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        note = (await form_fields(request, "note", max_length=4000))["note"]
        done = await attempt(
            db_session,
            escalations.record_contact(db_session, escalation_id=escalation_id, viewer=signed_in, note=note, actor=actor, now=clock.now()),
        )
        if isinstance(done, DomainError):
            listed = await escalations.open_escalations(db_session, viewer=signed_in, actor=actor, now=clock.now())
            return Template(
                "intake/escalations.html",
                context={"escalations": listed, "may_record": True, "error": done.detail},
                status_code=done.status_code,
            )
        return Redirect(path="/escalations")
