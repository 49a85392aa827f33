"""HTML pages of care teams: a patient's team now and before (a coordinator assigns or replaces a clinician
there), the coordinators' list of patients with their teams, break-glass for a clinician outside the team,
and the coordinators' review of break-glass grants."""

from __future__ import annotations

import uuid
from typing import Literal, overload

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import Access, load_patient_for
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.care_teams import break_glass, service
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError, InvalidInput
from telehealth.lib.forms import attempt, form_fields

TEAM_READERS = [requires_role(Role.COORDINATOR, Role.PRESCRIBER, Role.THERAPIST)]
COORDINATOR = [requires_role(Role.COORDINATOR)]
CLINICIAN = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]


@overload
def _uuid(raw: str, field: str, *, optional: Literal[False] = False) -> uuid.UUID: ...
@overload
def _uuid(raw: str, field: str, *, optional: Literal[True]) -> uuid.UUID | None: ...


def _uuid(raw: str, field: str, *, optional: bool = False) -> uuid.UUID | None:
    if optional and not raw.strip():
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput("request.invalid", "Choose from the list.", fields={field: "is not one of the choices"}) from None


async def _clinicians(session: AsyncSession) -> list[UserAccount]:
    return list(
        (
            await session.execute(
                select(UserAccount)
                .where(col(UserAccount.role).in_(service.CLINICIAN_ROLES), col(UserAccount.is_active).is_(True))
                .order_by(UserAccount.full_name)
            )
        ).scalars()
    )


class CareTeamPagesController(Controller):
    include_in_schema = False

    async def _team_page(
        self,
        session: AsyncSession,
        patient_id: uuid.UUID,
        *,
        signed_in: SignedIn,
        actor: Actor,
        clock: Clock,
        error: DomainError | None = None,
        values: dict[str, str] | None = None,
    ) -> Template:
        patient = await load_patient_for(
            session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="care_team", access=Access.OPERATIONAL
        )
        account = await session.get(UserAccount, patient.user_id)
        return Template(
            "care_teams/team.html",
            context={
                "patient": patient,
                "patient_name": account.full_name if account else "",
                "zone": patient.timezone,
                "members": await service.members(session, patient_id=patient.id, with_history=True),
                "clinicians": await _clinicians(session) if signed_in.role is Role.COORDINATOR else [],
                "clinical_view": signed_in.role
                in (Role.PRESCRIBER, Role.THERAPIST),  # the patient's page is the care team's, not the coordinator's
                "error": error.detail if error else None,
                "fields": error.fields if error else {},
                "values": values or {},
            },
            status_code=error.status_code if error else 200,
        )

    @get("/patients/{patient_id:uuid}/care-team", guards=TEAM_READERS)
    async def team(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        return await self._team_page(db_session, patient_id, signed_in=signed_in, actor=actor, clock=clock)

    @post("/patients/{patient_id:uuid}/care-team", guards=COORDINATOR)
    async def assign(
        self,
        request: Request,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "clinician_id", "replaces", "reason")

        async def change() -> object:
            return await service.assign(
                db_session,
                patient_id=patient_id,
                clinician_id=_uuid(fields["clinician_id"], "clinician_id"),
                replaces=_uuid(fields["replaces"], "replaces", optional=True),
                reason=fields["reason"],
                actor=actor,
                now=clock.now(),
            )

        result = await attempt(db_session, change())
        if isinstance(result, DomainError):
            return await self._team_page(db_session, patient_id, signed_in=signed_in, actor=actor, clock=clock, error=result, values=fields)
        return Redirect(path=f"/patients/{patient_id}/care-team")

    @get("/coordinator/care-teams", guards=COORDINATOR)
    async def teams(
        self, actor: NamedDependency[Actor], db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock]
    ) -> Template:
        """Every patient with their current team (operational: names and roles only); the listing is audited."""
        rows = (
            await db_session.execute(
                select(Patient.id, UserAccount.full_name)
                .join(UserAccount, col(UserAccount.id) == Patient.user_id)
                .order_by(UserAccount.full_name)
                .limit(500)
            )
        ).all()
        patients = [(patient_id, name, await service.members(db_session, patient_id=patient_id)) for patient_id, name in rows]
        await record_audit_event(
            db_session, actor=actor, action="care_team.list", resource_type="patient", now=clock.now(), reason=f"{len(patients)} shown"
        )
        return Template("care_teams/teams.html", context={"patients": patients})

    @get("/patients/{patient_id:uuid}/break-glass", guards=CLINICIAN)
    async def glass_form(self, patient_id: FromPath[uuid.UUID]) -> Template:
        return Template("care_teams/break_glass.html", context={"patient_id": patient_id, "error": None, "fields": {}, "values": {}})

    @post("/patients/{patient_id:uuid}/break-glass", guards=CLINICIAN)
    async def glass(
        self,
        request: Request,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "reason")
        result = await attempt(
            db_session,
            break_glass.break_glass(
                db_session, viewer=signed_in, patient_id=patient_id, reason=fields["reason"], actor=actor, now=clock.now()
            ),
        )
        if isinstance(result, DomainError):
            return Template(
                "care_teams/break_glass.html",
                context={"patient_id": patient_id, "error": result.detail, "fields": result.fields, "values": fields},
                status_code=result.status_code,
            )
        return Redirect(path=f"/patients/{patient_id}")  # the patient's page: everything, each read audited under the grant

    @get("/coordinator/break-glass", guards=COORDINATOR)
    async def to_review(self, db_session: NamedDependency[AsyncSession]) -> Template:
        return Template("care_teams/review.html", context={"grants": await break_glass.grants_to_review(db_session), "error": None})

    @post("/coordinator/break-glass/{grant_id:uuid}/review", guards=COORDINATOR)
    async def review(
        self,
        request: Request,
        grant_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "note", max_length=2000)
        result = await attempt(
            db_session, break_glass.review(db_session, grant_id=grant_id, note=fields["note"], actor=actor, now=clock.now())
        )
        if isinstance(result, DomainError):
            return Template(
                "care_teams/review.html",
                context={"grants": await break_glass.grants_to_review(db_session), "error": result.detail},
                status_code=result.status_code,
            )
        return Redirect(path="/coordinator/break-glass")
