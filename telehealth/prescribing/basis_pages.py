"""Pages of the prescribing basis: a patient's in-person evaluations with the small form that records one
(prescribers record their own, coordinators for a prescriber), and the coordinator's list of active patients
who will lack a basis after the telemedicine flexibilities end, by state, with its CSV."""

from __future__ import annotations

import uuid
from datetime import date
from itertools import groupby

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.authz import Access, load_patient_for
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError, InvalidInput
from telehealth.lib.forms import attempt, form_fields
from telehealth.prescribing import cliff, evaluations
from telehealth.settings import Settings

COORDINATOR = [requires_role(Role.COORDINATOR)]
RECORDERS = [requires_role(Role.PRESCRIBER, Role.COORDINATOR)]


def _evaluated_on(raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(
            "request.invalid", "Some details of the evaluation need another look.", fields={"evaluated_on": "must be a date"}
        ) from None


def _prescriber_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw.strip() else None
    except ValueError:
        raise InvalidInput(
            "request.invalid", "Choose the prescriber.", fields={"prescriber_id": "is not a prescriber of the clinic"}
        ) from None


class BasisPagesController(Controller):
    include_in_schema = False

    @get("/patients/{patient_id:uuid}/in-person-evaluations", guards=RECORDERS)
    async def evaluations_page(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
        done: FromQuery[str | None] = None,
    ) -> Template:
        return await self._page(db_session, patient_id, signed_in=signed_in, actor=actor, clock=clock, done=done == "recorded")

    async def _page(
        self,
        session: AsyncSession,
        patient_id: uuid.UUID,
        *,
        signed_in: SignedIn,
        actor: Actor,
        clock: Clock,
        done: bool = False,
        error: DomainError | None = None,
        values: dict[str, str] | None = None,
    ) -> Template:
        patient = await load_patient_for(
            session,
            viewer=signed_in,
            patient_id=patient_id,
            actor=actor,
            now=clock.now(),
            purpose="in_person_evaluations",
            access=Access.CLINIC_WIDE,
        )
        account = await session.get(UserAccount, patient.user_id)
        return Template(
            "prescribing/in_person_evaluations.html",
            context={
                "patient": patient,
                "patient_name": account.full_name if account else "",
                "user": signed_in,
                "evaluations": await evaluations.evaluations_of(session, patient_id=patient.id),
                "prescribers": await evaluations.prescribers(session) if signed_in.role is Role.COORDINATOR else [],
                "done": done,
                "error": error.detail if error else None,
                "fields": error.fields if error else {},
                "values": values or {},
            },
            status_code=error.status_code if error else 200,
        )

    @post("/patients/{patient_id:uuid}/in-person-evaluations", guards=RECORDERS)
    async def record(
        self,
        request: Request,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, "evaluated_on", "place", "prescriber_id", max_length=400)

        async def save() -> object:
            return await evaluations.record_in_person_evaluation(
                db_session,
                patient_id=patient_id,
                prescriber_id=_prescriber_id(fields["prescriber_id"]),
                evaluated_on=_evaluated_on(fields["evaluated_on"]),
                place=fields["place"],
                viewer=signed_in,
                actor=actor,
                now=clock.now(),
                settings=settings,
            )

        result = await attempt(db_session, save())
        if isinstance(result, DomainError):
            return await self._page(db_session, patient_id, signed_in=signed_in, actor=actor, clock=clock, error=result, values=fields)
        return Redirect(path=f"/patients/{patient_id}/in-person-evaluations?done=recorded")

    @get("/coordinator/prescribing-basis", guards=COORDINATOR)
    async def cliff_page(
        self, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings], clock: NamedDependency[Clock]
    ) -> Template:
        """Active patients whose next plan after the date has no basis, grouped by state, with what each lacks."""
        patients = await cliff.patients_without_basis(db_session, now=clock.now(), settings=settings)
        by_state = [(state, list(rows)) for state, rows in groupby(patients, key=lambda patient: patient.state)]
        return Template(
            "prescribing/basis_cliff.html",
            context={
                "by_state": by_state,
                "total": len(patients),
                "until": settings.telemedicine_flexibilities_until,
                "after": cliff.first_day_after(settings),
                "why_words": cliff.WHY_WORDS,
            },
        )

    @get("/coordinator/prescribing-basis.csv", guards=COORDINATOR)
    async def cliff_csv(
        self,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Response[str]:
        """The same list as a file (patient, state, prescriber, missing); each download is audited: names leave the system."""
        patients = await cliff.patients_without_basis(db_session, now=clock.now(), settings=settings)
        await record_audit_event(
            db_session,
            actor=actor,
            action="prescribing_basis.export",
            resource_type="report",
            now=clock.now(),
            reason=f"{len(patients)} patients",
        )
        return Response(
            cliff.without_basis_csv(patients, settings=settings),
            media_type="text/csv",
            headers={
                "content-disposition": (
                    f'attachment; filename="without-prescribing-basis-after-{settings.telemedicine_flexibilities_until.isoformat()}.csv"'
                )
            },
        )
