"""A signed plan's changes: a pause, a resume, a discontinuation, whoever makes them (a prescriber, a serious
event, a review), and what each causes for the session waiting to be taken and its sitter (DOMAIN.md: the
sitter is told of every change to a session they sit for). Paused: the sitter hears it is on hold (the
session stays, the plan may resume before its time); resumed: back on; discontinued: the session is
cancelled (transition table, audited), its links stop working and the sitter gets the invite's cancellation.
They live in dosing because what they cause is dosing's: prescribing writes and signs the plan, and never
reaches up to its sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.audit.service import change_status
from telehealth.billing.models import Payment
from telehealth.billing.service import release_payment
from telehealth.billing.settlement import refund_program
from telehealth.billing.states import PaymentPurpose, PaymentStatus
from telehealth.dosing.models import DosingSession, SeriousEvent, Sitter
from telehealth.dosing.sitter_mail import SessionChange, email_sitter
from telehealth.dosing.sitters import revoke_links
from telehealth.dosing.states import SESSION_TRANSITIONS, SessionStatus
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput, RuleRefused
from telehealth.prescribing.models import PlanBatch, TrochePlan
from telehealth.prescribing.states import BATCH_TRANSITIONS, PLAN_TRANSITIONS, UNSHIPPED, BatchStatus, PlanStatus
from telehealth.settings import Settings

PlanChange = Literal["paused", "resumed", "discontinued"]
SITTER_HEARS: dict[str, SessionChange] = {"paused": "on_hold", "resumed": "back_on", "discontinued": "cancelled"}


async def pause_plan(session: AsyncSession, plan: TrochePlan, *, reason: str, actor: Actor, now: datetime) -> TrochePlan:
    if not reason.strip():
        raise InvalidInput("request.invalid", "Give the reason.", fields={"reason": "is required"})
    await change_status(
        session,
        TrochePlan,
        plan.id,
        table=PLAN_TRANSITIONS,
        source=plan.status,
        target=PlanStatus.PAUSED,
        actor=actor,
        now=now,
        patient_id=plan.patient_id,
        values={"status_reason": reason.strip(), "updated_at": now},
    )
    await session.refresh(plan)
    await follow_plan(session, plan, change="paused", actor=actor, now=now)  # the sitter of a scheduled session hears it is on hold
    return plan


async def resume_plan(session: AsyncSession, plan: TrochePlan, *, actor: Actor, now: datetime) -> TrochePlan:
    """Resume a paused plan; one paused by a serious adverse event resumes only through its review."""
    unreviewed = await session.scalar(
        select(SeriousEvent.id).where(SeriousEvent.plan_id == plan.id, col(SeriousEvent.reviewed_at).is_(None)).limit(1)
    )
    if unreviewed is not None:
        raise RuleRefused(
            "plan.serious_event_unreviewed",
            "A serious adverse event paused this plan: review it (with a note) to resume or discontinue.",
            fields={"review": "is required before the plan resumes"},
        )
    delivered = await session.scalar(
        select(func.count()).select_from(PlanBatch).where(PlanBatch.plan_id == plan.id, PlanBatch.status == BatchStatus.DELIVERED)
    )
    target = PlanStatus.ACTIVE if delivered else PlanStatus.SENT_TO_PHARMACY
    await change_status(
        session,
        TrochePlan,
        plan.id,
        table=PLAN_TRANSITIONS,
        source=plan.status,
        target=target,
        actor=actor,
        now=now,
        patient_id=plan.patient_id,
        values={"status_reason": None, "updated_at": now},
    )
    await session.refresh(plan)
    await follow_plan(session, plan, change="resumed", actor=actor, now=now)
    return plan


async def discontinue_plan(
    session: AsyncSession, plan: TrochePlan, *, reason: str, actor: Actor, now: datetime, settings: Settings
) -> TrochePlan:
    """Stop the plan: batches not shipped are cancelled (nothing more ships, no more sessions unlock), the
    program fee is refunded by how many shipments have left, or, not paid yet, is no longer due."""
    if not reason.strip():
        raise InvalidInput("request.invalid", "Give the reason.", fields={"reason": "is required"})
    await change_status(
        session,
        TrochePlan,
        plan.id,
        table=PLAN_TRANSITIONS,
        source=plan.status,
        target=PlanStatus.DISCONTINUED,
        actor=actor,
        now=now,
        patient_id=plan.patient_id,
        values={"status_reason": reason.strip(), "updated_at": now},
    )
    await follow_plan(session, plan, change="discontinued", actor=actor, now=now)  # its scheduled session is cancelled, the sitter told
    batches = list(
        (await session.execute(select(PlanBatch).where(PlanBatch.plan_id == plan.id).order_by(col(PlanBatch.sequence)))).scalars()
    )
    for batch in batches:
        if batch.status in UNSHIPPED:
            await change_status(
                session,
                PlanBatch,
                batch.id,
                table=BATCH_TRANSITIONS,
                source=batch.status,
                target=BatchStatus.CANCELLED,
                actor=actor,
                now=now,
                patient_id=plan.patient_id,
                values={"updated_at": now},
            )
    shipped = sum(1 for batch in batches if batch.status in (BatchStatus.SHIPPED, BatchStatus.DELIVERED))
    if plan.signed_at is not None:
        await refund_program(session, plan_id=plan.id, shipments_sent=shipped, actor=actor, now=now, settings=settings)
        # A fee not paid yet is no longer due: nothing more will ship (its Checkout Session is expired too).
        unpaid = (
            await session.execute(
                select(Payment)
                .where(Payment.plan_id == plan.id, Payment.purpose == PaymentPurpose.PROGRAM, Payment.status == PaymentStatus.OPEN)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if unpaid is not None:
            await release_payment(session, unpaid, target=PaymentStatus.CANCELLED, now=now)
    await session.refresh(plan)
    return plan


async def follow_plan(session: AsyncSession, plan: TrochePlan, *, change: PlanChange, actor: Actor, now: datetime) -> None:
    """The caller holds the patient and the plan (accounts/locks.py); the sessions come next, then links."""
    waiting = list(
        (
            await session.execute(
                select(DosingSession)
                .where(DosingSession.plan_id == plan.id, DosingSession.status == SessionStatus.SCHEDULED)
                .with_for_update()
            )
        ).scalars()
    )
    for row in waiting:
        if change == "discontinued":
            await change_status(
                session,
                DosingSession,
                row.id,
                table=SESSION_TRANSITIONS,
                source=SessionStatus.SCHEDULED,
                target=SessionStatus.CANCELLED,
                actor=actor,
                now=now,
                patient_id=row.patient_id,
                values={"ics_sequence": row.ics_sequence + 1, "updated_at": now},
            )
            await revoke_links(session, now=now, dosing_session_id=row.id)
            await session.refresh(row)
        sitter = await session.get(Sitter, row.sitter_id) if row.sitter_id else None
        if sitter is not None:
            await email_sitter(session, row, sitter, change=SITTER_HEARS[change], now=now)
