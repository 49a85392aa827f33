"""The plan page's forms for the prescriber's changes to a signed plan: pause, resume, discontinue, and a
held batch released before its turn. They post from the page prescribing shows (/plans/{id}) and answer as
its signing form does (prescribing.pages.act_on_plan: the page again with the refusal, or back to it). The
same service functions as plan_changes_api.py."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.sessions import SignedIn
from telehealth.dosing import inventory, plan_changes
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.pages import PRESCRIBER, act_on_plan
from telehealth.settings import Settings


class PlanChangePagesController(Controller):
    include_in_schema = False
    guards = PRESCRIBER

    @post("/plans/{plan_id:uuid}/pause")
    async def pause(
        self,
        request: Request,
        plan_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        async def work(plan: TrochePlan, fields: dict[str, str]) -> TrochePlan:
            return await plan_changes.pause_plan(db_session, plan, reason=fields["reason"], actor=actor, now=clock.now())

        return await act_on_plan(
            request, db_session, plan_id, form="pause", names=("reason",), signed_in=signed_in, settings=settings, work=work
        )

    @post("/plans/{plan_id:uuid}/resume")
    async def resume(
        self,
        request: Request,
        plan_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        async def work(plan: TrochePlan, fields: dict[str, str]) -> TrochePlan:
            return await plan_changes.resume_plan(db_session, plan, actor=actor, now=clock.now())

        return await act_on_plan(request, db_session, plan_id, form="resume", names=(), signed_in=signed_in, settings=settings, work=work)

    @post("/plans/{plan_id:uuid}/discontinue")
    async def discontinue(
        self,
        request: Request,
        plan_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """Unshipped batches are cancelled and the program fee refunded by the policy."""

        async def work(plan: TrochePlan, fields: dict[str, str]) -> TrochePlan:
            return await plan_changes.discontinue_plan(
                db_session, plan, reason=fields["reason"], actor=actor, now=clock.now(), settings=settings
            )

        return await act_on_plan(
            request, db_session, plan_id, form="discontinue", names=("reason",), signed_in=signed_in, settings=settings, work=work
        )

    @post("/plans/{plan_id:uuid}/batches/{batch_id:uuid}/release")
    async def release(
        self,
        request: Request,
        plan_id: FromPath[uuid.UUID],
        batch_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """Send a later batch to the pharmacy: after the earlier sessions are reported, or now with a reason (audited)."""

        async def work(plan: TrochePlan, fields: dict[str, str]) -> Any:
            return await inventory.release_by_prescriber(
                db_session,
                batch_id=batch_id,
                prescriber_id=signed_in.user_id,
                override_reason=fields["override_reason"],
                actor=actor,
                now=clock.now(),
            )

        return await act_on_plan(
            request,
            db_session,
            plan_id,
            form=f"release:{batch_id}",
            names=("override_reason",),
            signed_in=signed_in,
            settings=settings,
            work=work,
        )
