"""JSON API of the intake (for the signed-in patient), the staff view of an intake, and escalations."""

from __future__ import annotations

import uuid
from datetime import datetime

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import load_patient_for, own_patient_record
from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.intake import escalations, service
from telehealth.intake.results import CRISIS_RESOURCES, patient_result
from telehealth.intake.schemas import (
    ClinicianReason,
    ConsentSigning,
    ConsentToSign,
    ContactNote,
    EscalationBody,
    IntakeOverview,
    PatientResult,
    StaffIntakeView,
    StepAnswers,
    StepSavedBody,
    StepState,
)
from telehealth.intake.sections import STEPS, step_title
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import NotFound
from telehealth.settings import Settings


async def overview(db_session: AsyncSession, signed_in: SignedIn, now: datetime) -> IntakeOverview:
    patient = await own_patient_record(db_session, viewer=signed_in)
    progress = await service.intake_progress(db_session, patient=patient, now=now)
    decision = await service.latest_decision(db_session, patient_id=patient.id)
    return IntakeOverview(
        status=progress.intake.status,
        steps=[StepState(key=step, title=step_title(step), done=progress.done[step]) for step in STEPS],
        next_step=progress.next_step,
        consents_to_sign=[
            ConsentToSign(document=d.key, title=d.title, version=d.version, sha256=d.sha256)
            for d in await service.consents_to_sign(db_session, patient_id=patient.id)
        ],
        result=patient_result(decision) if decision else None,
    )


async def open_escalation_bodies(db_session: AsyncSession, signed_in: SignedIn, actor: Actor, now: datetime) -> list[EscalationBody]:
    return [
        EscalationBody(id=e.id, patient_id=e.patient_id, patient_name=e.patient_name, kind=e.kind, opened_at=e.opened_at)
        for e in await escalations.open_escalations(db_session, viewer=signed_in, actor=actor, now=now)
    ]


class IntakeApiController(Controller):
    path = "/api/v1/intake"
    tags = ["intake"]
    guards = [requires_role(Role.PATIENT)]

    @get("/")
    async def get_overview(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock]
    ) -> IntakeOverview:
        """Which steps are done, the next one, the consents still to sign, and the result once submitted."""
        return await overview(db_session, signed_in, clock.now())

    @put("/steps/{step:str}")
    async def save_step(
        self,
        step: FromPath[str],
        data: JSONBody[StepAnswers],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> StepSavedBody:
        """Save one step (again to change it). A crisis answer comes back with crisis resources."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        saved = await service.save_step(
            db_session, patient=patient, step=step, answers=data.answers, actor=actor, now=clock.now(), settings=settings
        )
        progress = await service.intake_progress(db_session, patient=patient, now=clock.now())
        return StepSavedBody(
            step=step, next_step=progress.next_step, crisis=saved.crisis, crisis_resources=CRISIS_RESOURCES if saved.crisis else None
        )

    @post("/consents", status_code=200)
    async def sign_consent(
        self,
        data: JSONBody[ConsentSigning],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> IntakeOverview:
        """Sign the current version of a consent document by typing one's full legal name."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        await service.sign_consent(
            db_session, patient=patient, document=data.document, typed_name=data.typed_name, actor=actor, now=clock.now()
        )
        return await overview(db_session, signed_in, clock.now())

    @post("/submit", status_code=200)
    async def submit(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> PatientResult:
        """Submit a complete intake and answer the result in plain words."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        decision = await service.submit_intake(db_session, patient=patient, actor=actor, now=clock.now(), settings=settings)
        return patient_result(decision)


class StaffIntakeApiController(Controller):
    tags = ["intake"]

    @get("/api/v1/patients/{patient_id:uuid}/intake", guards=[requires_role(Role.PRESCRIBER, Role.THERAPIST)])  # the care team
    async def patient_intake(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> StaffIntakeView:
        """A patient's intake answers and screening reasons, for their care team. Every view is audited."""
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="intake.read"
        )
        intake = await service.latest_intake(db_session, patient_id=patient.id)
        if intake is None:
            raise NotFound("intake.not_started", "This patient has not started an intake yet.")
        decision = await service.latest_decision(db_session, patient_id=patient.id)
        return StaffIntakeView(
            patient_id=patient.id,
            status=intake.status,
            submitted_at=intake.submitted_at,
            answers=await service.saved_answers(db_session, intake.id),
            outcome=decision.outcome if decision else None,
            reasons=[
                ClinicianReason(
                    rule_id=r["rule_id"], outcome=r["outcome"], text=r["clinician_text"], evidence=r["evidence"], crisis=r["crisis"]
                )
                for r in (decision.reasons if decision else [])
            ],
            open_crisis=await escalations.has_open_crisis(db_session, patient_id=patient.id),
        )

    @get("/api/v1/escalations", guards=[requires_role(Role.PRESCRIBER, Role.COORDINATOR, Role.THERAPIST)])
    async def open_escalations(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> list[EscalationBody]:
        """Crisis escalations of the patients you may see, waiting for a clinician's contact, oldest first."""
        return await open_escalation_bodies(db_session, signed_in, actor, clock.now())

    @post("/api/v1/escalations/{escalation_id:uuid}/contact", status_code=200, guards=[requires_role(Role.PRESCRIBER, Role.THERAPIST)])
    async def record_contact(
        self,
        escalation_id: FromPath[uuid.UUID],
        data: JSONBody[ContactNote],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> list[EscalationBody]:
        """Record that a clinician reached the patient: the escalation closes and booking opens again."""
        await escalations.record_contact(
            db_session, escalation_id=escalation_id, viewer=signed_in, note=data.note, actor=actor, now=clock.now()
        )
        return await open_escalation_bodies(db_session, signed_in, actor, clock.now())
