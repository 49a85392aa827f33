"""The coordinator's page of sitters waiting for their verification call, with the small form that records
one. The same service functions as sitter_checks_api.py."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.dosing import sitter_checks
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.settings import Settings

PAGE = "/coordinator/sitters"


async def _page(
    session: AsyncSession, *, settings: Settings, done: bool = False, error: DomainError | None = None, failed_for: uuid.UUID | None = None
) -> Template:
    return Template(
        "dosing/sitters_to_verify.html",
        context={
            "waiting": await sitter_checks.sitters_awaiting_verification(session),
            "required": settings.sitter_verification_required,
            "zone": settings.clinic_timezone,
            "done": done,
            "error": error.detail if error else None,
            "fields": error.fields if error else {},
            "failed_for": failed_for,
        },
        status_code=error.status_code if error else 200,
    )


class SitterVerificationPagesController(Controller):
    include_in_schema = False
    guards = [requires_role(Role.COORDINATOR)]

    @get(PAGE)
    async def waiting(
        self, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings], done: FromQuery[str | None] = None
    ) -> Template:
        return await _page(db_session, settings=settings, done=done == "verified")

    @post(PAGE + "/{sitter_id:uuid}/verification")
    async def verify(
        self,
        request: Request,
        sitter_id: FromPath[uuid.UUID],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "method", "note", max_length=1000)
        verified = await attempt(
            db_session,
            sitter_checks.verify_sitter(
                db_session, sitter_id=sitter_id, method=fields["method"], note=fields["note"], actor=actor, now=clock.now()
            ),
        )
        if isinstance(verified, DomainError):
            return await _page(db_session, settings=settings, error=verified, failed_for=sitter_id)
        return Redirect(path=f"{PAGE}?done=verified")
