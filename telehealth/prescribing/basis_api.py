"""JSON API of in-person evaluations: a prescriber records their own, a coordinator one for a prescriber;
both read a patient's list (the read is audited like any staff read of a patient record)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import Access, load_patient_for
from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.schema import RequestBody, ResponseBody
from telehealth.prescribing import evaluations
from telehealth.settings import Settings


class EvaluationRequest(RequestBody):
    evaluated_on: date
    place: Annotated[str, msgspec.Meta(max_length=400, description="where the patient was examined, e.g. the clinic's address")]
    prescriber_id: uuid.UUID | None = None  # a coordinator names the prescriber; a prescriber records their own


class EvaluationBody(ResponseBody):
    id: uuid.UUID
    patient_id: uuid.UUID
    prescriber_id: uuid.UUID
    prescriber_name: str
    evaluated_on: date
    place: str
    recorded_by: uuid.UUID
    recorded_by_name: str
    recorded_at: datetime


def evaluation_body(line: evaluations.EvaluationLine) -> EvaluationBody:
    e = line.evaluation
    return EvaluationBody(
        id=e.id,
        patient_id=e.patient_id,
        prescriber_id=e.prescriber_id,
        prescriber_name=line.prescriber_name,
        evaluated_on=e.evaluated_on,
        place=e.place,
        recorded_by=e.recorded_by,
        recorded_by_name=line.recorded_by_name,
        recorded_at=e.recorded_at,
    )


class EvaluationApiController(Controller):
    path = "/api/v1/patients/{patient_id:uuid}/in-person-evaluations"
    tags = ["prescribing"]
    guards = [requires_role(Role.PRESCRIBER, Role.COORDINATOR)]

    @get("/")
    async def list_evaluations(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> list[EvaluationBody]:
        """The patient's in-person medical evaluations, latest first."""
        patient = await load_patient_for(
            db_session,
            viewer=signed_in,
            patient_id=patient_id,
            actor=actor,
            now=clock.now(),
            purpose="in_person_evaluations",
            access=Access.CLINIC_WIDE,
        )
        return [evaluation_body(line) for line in await evaluations.evaluations_of(db_session, patient_id=patient.id)]

    @post("/", status_code=201)
    async def record(
        self,
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[EvaluationRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> EvaluationBody:
        """Record an in-person medical evaluation (date and place). A date in the future or before the patient's
        account was created answers 422 naming `evaluated_on`. After the telemedicine flexibilities end it is the
        basis on which that prescriber signs this patient's plans."""
        evaluation = await evaluations.record_in_person_evaluation(
            db_session,
            patient_id=patient_id,
            prescriber_id=data.prescriber_id,
            evaluated_on=data.evaluated_on,
            place=data.place,
            viewer=signed_in,
            actor=actor,
            now=clock.now(),
            settings=settings,
        )
        line = next(
            line for line in await evaluations.evaluations_of(db_session, patient_id=patient_id) if line.evaluation.id == evaluation.id
        )
        return evaluation_body(line)
