"""JSON API of care teams: who is on a patient's team (and was), a coordinator's assignment or replacement,
a clinician breaking the glass, and the coordinators' review of break-glass grants."""

from __future__ import annotations

import uuid
from datetime import datetime
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
from telehealth.care_teams import break_glass, service
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.schema import RequestBody, ResponseBody

Reason = Annotated[str, msgspec.Meta(max_length=1000)]


class AssignRequest(RequestBody):
    clinician_id: uuid.UUID
    reason: Reason
    replaces: uuid.UUID | None = None  # the current member's id this clinician takes over from


class BreakGlassRequest(RequestBody):
    reason: Reason


class GrantBody(ResponseBody):
    id: uuid.UUID
    patient_id: uuid.UUID
    granted_at: datetime
    expires_at: datetime


class ReviewRequest(RequestBody):
    note: Annotated[str, msgspec.Meta(max_length=2000)]


class CareTeamApiController(Controller):
    tags = ["care teams"]

    @get("/api/v1/patients/{patient_id:uuid}/care-team", guards=[requires_role(Role.COORDINATOR, Role.PRESCRIBER, Role.THERAPIST)])
    async def read(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> list[service.Member]:
        """The team now and before (operational: coordinators and the team itself)."""
        patient = await load_patient_for(
            db_session,
            viewer=signed_in,
            patient_id=patient_id,
            actor=actor,
            now=clock.now(),
            purpose="care_team",
            access=Access.OPERATIONAL,
        )
        return await service.members(db_session, patient_id=patient.id, with_history=True)

    @post("/api/v1/patients/{patient_id:uuid}/care-team", status_code=201, guards=[requires_role(Role.COORDINATOR)])
    async def assign(
        self,
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[AssignRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> service.Member:
        """Put a prescriber or therapist on the team, beside the others or in place of `replaces`."""
        member = await service.assign(
            db_session,
            patient_id=patient_id,
            clinician_id=data.clinician_id,
            replaces=data.replaces,
            reason=data.reason,
            actor=actor,
            now=clock.now(),
        )
        return member

    @post("/api/v1/patients/{patient_id:uuid}/break-glass", status_code=201, guards=[requires_role(Role.PRESCRIBER, Role.THERAPIST)])
    async def break_the_glass(
        self,
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[BreakGlassRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> GrantBody:
        """An urgent read of a patient outside your care team: a reason, for four hours, audited and reviewed."""
        grant = await break_glass.break_glass(
            db_session, viewer=signed_in, patient_id=patient_id, reason=data.reason, actor=actor, now=clock.now()
        )
        return GrantBody(id=grant.id, patient_id=grant.patient_id, granted_at=grant.granted_at, expires_at=grant.expires_at)

    @get("/api/v1/break-glass", guards=[requires_role(Role.COORDINATOR)])
    async def to_review(self, db_session: NamedDependency[AsyncSession]) -> list[break_glass.GrantToReview]:
        """Every grant no coordinator has reviewed yet, oldest first."""
        return await break_glass.grants_to_review(db_session)

    @post("/api/v1/break-glass/{grant_id:uuid}/review", status_code=200, guards=[requires_role(Role.COORDINATOR)])
    async def review(
        self,
        grant_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> dict[str, str]:
        await break_glass.review(db_session, grant_id=grant_id, note=data.note, actor=actor, now=clock.now())
        return {"status": "reviewed"}
