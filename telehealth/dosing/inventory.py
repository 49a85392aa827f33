"""Troches on hand, per plan: delivered minus reported used minus reported lost. Diversion control flags
the prescriber when a loss is reported, the count falls below zero, a session used more than prescribed,
or fewer (on a session reported completed, or leaving more on hand than the sessions left need), or the
next batch is asked for early. A held batch whose earlier sessions are all reported is released by itself
(the pharmacy rule) unless a flag is open; the plan's prescriber may release it sooner only with a reason
(audited). Prescribing's pharmacy.move_batch moves it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.audit.service import record_audit_event
from telehealth.db import driver
from telehealth.dosing.alerts import alert_care_team
from telehealth.dosing.models import DosingReport, DosingSession, InventoryFlag
from telehealth.dosing.sessions import units_for
from telehealth.dosing.states import SessionStatus
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput, NotFound, RuleRefused
from telehealth.lib.validation import plain_text_problem
from telehealth.prescribing import pharmacy
from telehealth.prescribing.models import PlanBatch, TrochePlan
from telehealth.prescribing.states import BatchStatus, PlanStatus

FLAG_WORDS = {
    "loss_reported": "troches reported lost or stolen",
    "count_below_zero": "more troches reported used than were delivered",
    "more_than_prescribed": "a session used more troches than prescribed",
    "fewer_than_prescribed": "a session used fewer troches than prescribed",
    "early_batch_request": "the next batch was asked for before the earlier sessions were reported",
}


# Under-use is flagged like over-use: troches prescribed for a session and not taken stay in the home. A
# shortfall of this many or more is flagged (troches are whole units, so 1 means any shortfall) when the
# patient says the session was completed, or, when they say it was not, once what is left on hand exceeds
# what the sessions still to report need by as many.
UNDER_USE_TOLERANCE_TROCHES = 1


_SESSIONS_REPORTED = (
    f"SELECT count(*) FROM dosing_session WHERE plan_id = $1 AND status = '{SessionStatus.REPORTED.value}' AND number <= $2"
)


async def sessions_reported(session: AsyncSession, *, plan_id: uuid.UUID, through_session: int) -> int:
    """How many of the plan's sessions up to `through_session` the patient has reported. On the driver: the
    patient's home asks it on every visit (the reassessment's checkpoint), as do the batch releases."""
    reported: int = await driver.fetchval(session, _SESSIONS_REPORTED, plan_id, through_session)
    return reported


@dataclass(frozen=True)
class Inventory:
    delivered: int
    used: int
    lost: int

    @property
    def on_hand(self) -> int:
        return self.delivered - self.used - self.lost


async def inventory(session: AsyncSession, *, plan_id: uuid.UUID) -> Inventory:
    delivered = await session.scalar(
        select(func.coalesce(func.sum(func.coalesce(PlanBatch.units_filled, PlanBatch.units)), 0)).where(
            PlanBatch.plan_id == plan_id, PlanBatch.status == BatchStatus.DELIVERED
        )
    )
    used = await session.scalar(
        select(func.coalesce(func.sum(DosingReport.troches_used), 0))
        .join(DosingSession, col(DosingSession.id) == DosingReport.dosing_session_id)
        .where(DosingSession.plan_id == plan_id)
    )
    lost = await session.scalar(
        select(func.coalesce(func.sum(InventoryFlag.troches), 0)).where(
            InventoryFlag.plan_id == plan_id, InventoryFlag.kind == "loss_reported"
        )
    )
    return Inventory(int(delivered or 0), int(used or 0), int(lost or 0))


async def raise_flag(
    session: AsyncSession, plan: TrochePlan, *, kind: str, troches: int, now: datetime, detail: str | None = None
) -> InventoryFlag:
    flag = InventoryFlag(plan_id=plan.id, patient_id=plan.patient_id, kind=kind, troches=troches, detail=detail, raised_at=now)
    session.add(flag)
    await session.flush()
    await record_audit_event(
        session,
        actor=Actor.system(),
        action="inventory_flag.raise",
        resource_type="inventory_flag",
        resource_id=flag.id,
        patient_id=plan.patient_id,
        now=now,
        reason=kind,
    )
    await alert_care_team(session, plan, template="care_team_update", key=f"inventory_flag:{flag.id}", now=now)
    return flag


async def open_flags(session: AsyncSession, *, plan_id: uuid.UUID) -> list[InventoryFlag]:
    return list(
        (
            await session.execute(
                select(InventoryFlag)
                .where(InventoryFlag.plan_id == plan_id, col(InventoryFlag.resolved_at).is_(None))
                .order_by(col(InventoryFlag.raised_at))
            )
        ).scalars()
    )


async def troches_still_needed(session: AsyncSession, plan: TrochePlan) -> int:
    """The troches the plan's sessions not yet reported need, counting only doses in delivered batches."""
    delivered = (
        await session.execute(
            select(PlanBatch.first_session, PlanBatch.last_session).where(
                PlanBatch.plan_id == plan.id, PlanBatch.status == BatchStatus.DELIVERED
            )
        )
    ).all()
    reported = set(
        (
            await session.execute(
                select(DosingSession.number).where(DosingSession.plan_id == plan.id, DosingSession.status == SessionStatus.REPORTED)
            )
        ).scalars()
    )
    return sum(units_for(plan, number) for first, last in delivered for number in range(first, last + 1) if number not in reported)


async def check_after_report(
    session: AsyncSession, plan: TrochePlan, *, units_prescribed: int, troches_used: int, completed: bool, now: datetime
) -> None:
    """After a report (already counted): flag use beyond the prescription, use short of it (see
    UNDER_USE_TOLERANCE_TROCHES), and a count below zero."""
    if troches_used > units_prescribed:
        await raise_flag(session, plan, kind="more_than_prescribed", troches=troches_used - units_prescribed, now=now)
    counts = await inventory(session, plan_id=plan.id)
    shortfall = units_prescribed - troches_used
    if shortfall >= UNDER_USE_TOLERANCE_TROCHES:
        if completed:  # a completed session takes the whole dose: where did the rest go?
            await raise_flag(
                session,
                plan,
                kind="fewer_than_prescribed",
                troches=shortfall,
                now=now,
                detail=f"reported completed with {troches_used} of {units_prescribed} troches",
            )
        elif (surplus := counts.on_hand - await troches_still_needed(session, plan)) >= UNDER_USE_TOLERANCE_TROCHES:
            # Stopping early explains the shortfall, not the troches it leaves in the home beyond what is still to be taken.
            await raise_flag(
                session,
                plan,
                kind="fewer_than_prescribed",
                troches=shortfall,
                now=now,
                detail=f"not completed, {troches_used} of {units_prescribed} troches used; {surplus} on hand beyond the sessions left",
            )
    if counts.on_hand < 0:
        await raise_flag(session, plan, kind="count_below_zero", troches=-counts.on_hand, now=now)


async def report_loss(
    session: AsyncSession, plan: TrochePlan, *, troches: int, what_happened: str, actor: Actor, now: datetime
) -> InventoryFlag:
    """The patient reports troches lost, stolen or spoiled: counted off what is on hand, and flagged."""
    problems = {}
    if not 1 <= troches <= 100:
        problems["troches"] = "must be a whole number from 1 to 100"
    if not what_happened.strip():
        problems["what_happened"] = "is required"
    elif problem := plain_text_problem(what_happened, longest=1000):
        problems["what_happened"] = problem
    if problems:
        raise InvalidInput("request.invalid", "The report of a loss is not complete.", fields=problems)
    if plan.status in (PlanStatus.DRAFT, PlanStatus.COMPLETED, PlanStatus.DISCONTINUED):
        raise Conflict("plan.not_live", "This plan is over.")
    flag = await raise_flag(session, plan, kind="loss_reported", troches=troches, now=now, detail=what_happened.strip())
    await record_audit_event(
        session,
        actor=actor,
        action="inventory.report_loss",
        resource_type="inventory_flag",
        resource_id=flag.id,
        patient_id=plan.patient_id,
        now=now,
    )
    return flag


async def _next_held_batch(session: AsyncSession, plan_id: uuid.UUID) -> PlanBatch | None:
    return (
        await session.execute(
            select(PlanBatch)
            .where(PlanBatch.plan_id == plan_id, PlanBatch.status == BatchStatus.HELD)
            .order_by(col(PlanBatch.sequence))
            .limit(1)
        )
    ).scalar_one_or_none()


async def release_if_reported(session: AsyncSession, plan: TrochePlan, *, now: datetime) -> PlanBatch | None:
    """The pharmacy rule: the next batch goes to the pharmacy once the batch before it is delivered and its
    sessions are all reported, unless a diversion flag waits for the prescriber."""
    batch = await _next_held_batch(session, plan.id)
    if batch is None or plan.status not in (PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE) or await open_flags(session, plan_id=plan.id):
        return None
    if await sessions_reported(session, plan_id=plan.id, through_session=batch.first_session - 1) < batch.first_session - 1:
        return None
    previous = await session.scalar(select(PlanBatch.status).where(PlanBatch.plan_id == plan.id, PlanBatch.sequence == batch.sequence - 1))
    if previous is not None and previous != BatchStatus.DELIVERED:
        return None
    return await pharmacy.move_batch(session, batch, plan, BatchStatus.QUEUED, actor=Actor.system(), now=now)  # no override, no person


async def release_by_prescriber(
    session: AsyncSession, *, batch_id: uuid.UUID, prescriber_id: uuid.UUID, override_reason: str | None, actor: Actor, now: datetime
) -> PlanBatch:
    """Send a later batch to the pharmacy: the batch before it was delivered and its sessions reported, or
    the plan's prescriber overrides with a reason (audited with it)."""
    batch, plan = await pharmacy.lock_batch(session, batch_id)
    if plan.prescriber_id != prescriber_id:
        raise NotFound("batch.not_found", "No batch with this id is yours.")
    if plan.status not in (PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE):
        raise RuleRefused("batch.plan_not_live", "Only a batch of a live, unpaused plan can be released.")
    previous = (
        await session.execute(select(PlanBatch).where(PlanBatch.plan_id == plan.id, PlanBatch.sequence == batch.sequence - 1))
    ).scalar_one_or_none()
    if previous is not None and previous.status != BatchStatus.DELIVERED:
        raise RuleRefused("batch.previous_not_delivered", "The batch before this one has not been delivered yet.")
    reported = await sessions_reported(session, plan_id=plan.id, through_session=batch.first_session - 1)
    if reported < batch.first_session - 1 and not (override_reason or "").strip():
        raise RuleRefused(
            "batch.sessions_not_reported",
            f"Sessions 1 to {batch.first_session - 1} are not all reported yet ({reported} are). Release it anyway only with a reason.",
            fields={"override_reason": "is required to release before the earlier sessions are reported"},
        )
    overridden = reported < batch.first_session - 1
    released = await pharmacy.move_batch(
        session,
        batch,
        plan,
        BatchStatus.QUEUED,
        actor=actor,
        now=now,
        release_override_reason=(override_reason or "").strip() if overridden else None,
    )
    if overridden:
        await record_audit_event(
            session,
            actor=actor,
            action="plan_batch.release_override",
            resource_type="plan_batch",
            resource_id=batch.id,
            patient_id=plan.patient_id,
            now=now,
            reason="override",
        )
    return released


async def request_next_batch(session: AsyncSession, plan: TrochePlan, *, actor: Actor, now: datetime) -> tuple[PlanBatch | None, bool]:
    """The patient asks for the next batch: released when it is due, flagged to the prescriber when early.
    Answers the batch (if released) and whether the request was early."""
    batch = await _next_held_batch(session, plan.id)
    if batch is None:
        raise NotFound("batch.none_waiting", "Every batch of your plan has been sent already.")
    await record_audit_event(
        session,
        actor=actor,
        action="inventory.request_next_batch",
        resource_type="plan_batch",
        resource_id=batch.id,
        patient_id=plan.patient_id,
        now=now,
    )
    reported = await sessions_reported(session, plan_id=plan.id, through_session=batch.first_session - 1)
    if reported < batch.first_session - 1:
        await raise_flag(
            session,
            plan,
            kind="early_batch_request",
            troches=0,
            now=now,
            detail=f"{reported} of sessions 1 to {batch.first_session - 1} reported",
        )
        return None, True
    return await release_if_reported(session, plan, now=now), False


async def resolve_flag(
    session: AsyncSession, plan: TrochePlan, *, flag_id: uuid.UUID, note: str, actor: Actor, now: datetime
) -> InventoryFlag:
    if not note.strip():
        raise InvalidInput("request.invalid", "Write what you found.", fields={"note": "is required"})
    resolved = await session.execute(
        update(InventoryFlag)
        .where(col(InventoryFlag.id) == flag_id, col(InventoryFlag.plan_id) == plan.id, col(InventoryFlag.resolved_at).is_(None))
        .values(resolved_at=now, resolved_by=actor.user_id, resolution_note=note.strip()[:2000])
        .returning(InventoryFlag)
    )
    flag = resolved.scalar_one_or_none()
    if flag is None:
        raise NotFound("inventory_flag.not_found", "No open flag with this id on this plan.")
    await record_audit_event(
        session,
        actor=actor,
        action="inventory_flag.resolve",
        resource_type="inventory_flag",
        resource_id=flag.id,
        patient_id=plan.patient_id,
        now=now,
    )
    await release_if_reported(session, plan, now=now)
    return flag
