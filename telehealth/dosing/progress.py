"""What a reported session moves forward: the last one completes the plan; otherwise the next batch may
be due (the pharmacy rule). A paused plan moves nothing; its review calls this again on resuming."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.audit.service import change_status
from telehealth.dosing import inventory
from telehealth.lib.actors import Actor
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.states import PLAN_TRANSITIONS, PlanStatus


async def advance(session: AsyncSession, plan: TrochePlan, *, now: datetime) -> None:
    if plan.status != PlanStatus.ACTIVE:
        return
    if await inventory.sessions_reported(session, plan_id=plan.id, through_session=plan.sessions) >= plan.sessions:
        await change_status(
            session,
            TrochePlan,
            plan.id,
            table=PLAN_TRANSITIONS,
            source=PlanStatus.ACTIVE,
            target=PlanStatus.COMPLETED,
            actor=Actor.system(),
            now=now,
            patient_id=plan.patient_id,
            values={"updated_at": now},
        )
        await session.refresh(plan)
        return
    await inventory.release_if_reported(session, plan, now=now)
