"""JSON API of the prescriber's changes to a signed plan: pause, resume, discontinue (their own plan, the
patient locked first), and a held batch released before its turn. The rules are in plan_changes.py and
inventory.py; the plan's and the batch's bodies are prescribing's."""

from __future__ import annotations

import uuid

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.sessions import SignedIn
from telehealth.dosing import inventory, plan_changes
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.prescribing import plans
from telehealth.prescribing.api import PRESCRIBER, batch_body, plan_body
from telehealth.prescribing.schemas import BatchBody, PlanBody, ReasonBody, ReleaseBody
from telehealth.settings import Settings


class PlanChangeApiController(Controller):
    tags = ["prescribing"]  # the plan's endpoints, where the API's readers have always found them
    guards = PRESCRIBER

    @post("/api/v1/plans/{plan_id:uuid}/pause", status_code=200)
    async def pause(
        self,
        plan_id: FromPath[uuid.UUID],
        data: JSONBody[ReasonBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> PlanBody:
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in, lock=True)
        return await plan_body(
            db_session, await plan_changes.pause_plan(db_session, plan, reason=data.reason, actor=actor, now=clock.now())
        )

    @post("/api/v1/plans/{plan_id:uuid}/resume", status_code=200)
    async def resume(
        self,
        plan_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> PlanBody:
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in, lock=True)
        return await plan_body(db_session, await plan_changes.resume_plan(db_session, plan, actor=actor, now=clock.now()))

    @post("/api/v1/plans/{plan_id:uuid}/discontinue", status_code=200)
    async def discontinue(
        self,
        plan_id: FromPath[uuid.UUID],
        data: JSONBody[ReasonBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> PlanBody:
        """Stop the plan: unshipped batches are cancelled and the program fee refunded by the policy."""
        plan = await plans.own_plan(db_session, plan_id=plan_id, signed_in=signed_in, lock=True)
        discontinued = await plan_changes.discontinue_plan(
            db_session, plan, reason=data.reason, actor=actor, now=clock.now(), settings=settings
        )
        return await plan_body(db_session, discontinued)

    @post("/api/v1/batches/{batch_id:uuid}/release", status_code=200)
    async def release(
        self,
        batch_id: FromPath[uuid.UUID],
        data: JSONBody[ReleaseBody],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> BatchBody:
        """Send a later batch to the pharmacy (after the earlier sessions are reported, or with your reason)."""
        batch = await inventory.release_by_prescriber(
            db_session,
            batch_id=batch_id,
            prescriber_id=signed_in.user_id,
            override_reason=data.override_reason,
            actor=actor,
            now=clock.now(),
        )
        return batch_body(batch)
