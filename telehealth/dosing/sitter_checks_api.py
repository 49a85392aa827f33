"""JSON API of the coordinator's sitter checks: the sitters waiting for their verification call, and the
call recorded (method, time, who; audited). The rules are in sitter_checks.py."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.dosing import sitter_checks
from telehealth.dosing.api import sitter_body
from telehealth.dosing.schemas import SitterBody, UnverifiedSitterBody, VerificationRequest
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.settings import Settings


class SitterVerificationApiController(Controller):
    path = "/api/v1/sitters"
    tags = ["dosing"]
    guards = [requires_role(Role.COORDINATOR)]

    @get("/unverified")
    async def unverified(
        self, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> list[UnverifiedSitterBody]:
        """Sitters who signed the agreement and wait for a coordinator's short call (video or phone) before their
        first session, longest waiting first: their contact, the patient's name, a session already scheduled."""
        return [
            UnverifiedSitterBody(
                sitter=sitter_body(item.sitter, settings),
                patient_id=item.sitter.patient_id,
                patient_name=item.patient_name,
                next_session_at=item.next_session_at,
            )
            for item in await sitter_checks.sitters_awaiting_verification(db_session)
        ]

    @post("/{sitter_id:uuid}/verification", status_code=200)
    async def verify(
        self,
        sitter_id: FromPath[uuid.UUID],
        data: JSONBody[VerificationRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> SitterBody:
        """Record the call with this sitter: `method` video or phone (422 naming it otherwise), an optional
        `note`; once per sitter (409 `sitter.already_verified`), and only after they signed (409)."""
        verified = await sitter_checks.verify_sitter(
            db_session, sitter_id=sitter_id, method=data.method, note=data.note, actor=actor, now=clock.now()
        )
        return sitter_body(verified, settings)
