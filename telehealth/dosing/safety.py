"""Serious adverse events: one pauses the plan at once and alerts the prescriber and the coordinators (an
email with no details; the event waits on their pages). Only a prescriber's review, with a note, resumes
or discontinues the plan."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.locks import lock_patient
from telehealth.audit.service import record_audit_event
from telehealth.dosing import plan_changes, progress
from telehealth.dosing.alerts import alert_care_team
from telehealth.dosing.models import SeriousEvent
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, InvalidInput
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.states import PlanStatus
from telehealth.settings import Settings

PAUSABLE = (PlanStatus.SIGNED, PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE)

# What makes an event serious, in the words the prescriber reads.
REASON_WORDS = {
    "emergency_services_called": "emergency services were called",
    "fainting": "fainting",
    "chest_pain": "chest pain",
    "suicidal_thoughts": "suicidal thoughts",
    "blood_pressure_urgent": "blood pressure at or above the urgent threshold",
}


async def record_serious_event(
    session: AsyncSession,
    plan: TrochePlan,
    *,
    source: str,
    reasons: list[str],
    now: datetime,
    dosing_session_id: uuid.UUID | None = None,
    alert: bool = True,
) -> SeriousEvent:
    """Record it, pause the plan (if it is not paused or over already) and alert the care team (unless a
    crisis escalation opened in the same moment has just alerted them: one email, not two)."""
    await lock_patient(session, plan.patient_id)  # held already on every path through a dose; taken here for the others
    event = SeriousEvent(
        plan_id=plan.id, patient_id=plan.patient_id, dosing_session_id=dosing_session_id, source=source, reasons=reasons, occurred_at=now
    )
    session.add(event)
    await session.flush()
    await record_audit_event(
        session,
        actor=Actor.system(),
        action="serious_event.record",
        resource_type="serious_event",
        resource_id=event.id,
        patient_id=plan.patient_id,
        now=now,
        reason=",".join(reasons)[:80],
    )
    await session.refresh(plan, with_for_update=True)  # the plan's status now, not when this request read it
    if plan.status in PAUSABLE:
        await plan_changes.pause_plan(
            session, plan, reason="A serious adverse event was reported; a prescriber must review it.", actor=Actor.system(), now=now
        )
    if alert:
        await alert_care_team(session, plan, template="staff_escalation", key=f"serious_event:{event.id}", now=now)
    return event


async def open_serious_events(session: AsyncSession, *, plan_id: uuid.UUID) -> list[SeriousEvent]:
    return list(
        (
            await session.execute(
                select(SeriousEvent)
                .where(SeriousEvent.plan_id == plan_id, col(SeriousEvent.reviewed_at).is_(None))
                .order_by(col(SeriousEvent.occurred_at))
            )
        ).scalars()
    )


async def review(
    session: AsyncSession, plan: TrochePlan, *, note: str, decision: str, actor: Actor, now: datetime, settings: Settings
) -> TrochePlan:
    """A prescriber reviews every open event of the plan with one note, then resumes or discontinues it."""
    problems = {}
    if not note.strip():
        problems["note"] = "is required: what you reviewed and why you decided"
    elif len(note) > 4000:
        problems["note"] = "must be at most 4000 characters"
    if decision not in ("resume", "discontinue"):
        problems["decision"] = "must be resume or discontinue"
    if problems:
        raise InvalidInput("request.invalid", "The review is not complete.", fields=problems)
    if plan.status != PlanStatus.PAUSED:
        raise Conflict("plan.not_paused", "This plan is not paused: there is nothing to review.")
    reviewed = await session.execute(
        update(SeriousEvent)
        .where(col(SeriousEvent.plan_id) == plan.id, col(SeriousEvent.reviewed_at).is_(None))
        .values(reviewed_at=now, reviewed_by=actor.user_id, review_note=note.strip(), review_decision=decision)
        .returning(col(SeriousEvent.id))
    )
    for event_id in reviewed.scalars():
        await record_audit_event(
            session,
            actor=actor,
            action="serious_event.review",
            resource_type="serious_event",
            resource_id=event_id,
            patient_id=plan.patient_id,
            now=now,
            reason=decision,
        )
    if decision == "resume":
        resumed = await plan_changes.resume_plan(session, plan, actor=actor, now=now)
        # A pause holds back what a report would have done (complete the plan, release the next batch):
        # do it now, or the plan waits with nothing to take.
        await progress.advance(session, resumed, now=now)
        return resumed
    return await plan_changes.discontinue_plan(session, plan, reason=note.strip(), actor=actor, now=now, settings=settings)
