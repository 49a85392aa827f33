"""A plan's status changes reach the session waiting to be taken and its sitter (DOMAIN.md: the sitter is told
of every change to a session they sit for). Paused: the sitter hears it is on hold (the session stays, the
plan may resume before its time); resumed: back on; discontinued: the session is cancelled (transition
table, audited), its links stop working and the sitter gets the invite's cancellation. prescribing/plans.py
calls `follow_plan` after each such change, whoever made it: a prescriber, a serious event, a review."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from telehealth.audit.service import change_status
from telehealth.dosing.models import DosingSession, Sitter
from telehealth.dosing.sitter_mail import SessionChange, email_sitter
from telehealth.dosing.sitters import revoke_links
from telehealth.dosing.states import SESSION_TRANSITIONS, SessionStatus
from telehealth.lib.actors import Actor
from telehealth.prescribing.models import TrochePlan

PlanChange = Literal["paused", "resumed", "discontinued"]
SITTER_HEARS: dict[str, SessionChange] = {"paused": "on_hold", "resumed": "back_on", "discontinued": "cancelled"}


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
