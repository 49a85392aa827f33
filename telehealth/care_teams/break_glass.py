"""Break the glass: a prescriber or therapist outside a patient's care team reads the record for an urgent,
stated reason. The grant lasts BREAK_GLASS_FOR, is audited, the care team is told (an email with no detail)
and every grant waits on the coordinators' review list until one of them reviews it with a note."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telehealth.accounts.models import BreakGlassGrant, CareTeamMember, Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.db.base import table_of
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, Forbidden, InvalidInput, NotFound
from telehealth.lib.validation import plain_text_problem
from telehealth.notifications.service import queue_email

BREAK_GLASS_FOR = timedelta(hours=4)
MAY_BREAK_GLASS = frozenset({Role.PRESCRIBER, Role.THERAPIST})


async def break_glass(
    session: AsyncSession, *, viewer: SignedIn, patient_id: uuid.UUID, reason: str, actor: Actor, now: datetime
) -> BreakGlassGrant:
    if viewer.role not in MAY_BREAK_GLASS:
        await record_audit_event(
            session,
            actor=actor,
            action="patient.break_glass",
            resource_type="patient",
            resource_id=patient_id,
            now=now,
            outcome="denied",
            reason="role",
        )
        raise Forbidden("break_glass.not_a_clinician", "Only a prescriber or therapist may break the glass.", keep_evidence=True)
    problem = "is required: why you need this record now" if not reason.strip() else plain_text_problem(reason, longest=1000)
    if problem:
        await record_audit_event(
            session,
            actor=actor,
            action="patient.break_glass",
            resource_type="patient",
            resource_id=patient_id,
            now=now,
            outcome="denied",
            reason="no_reason",
        )
        raise InvalidInput("request.invalid", "Say why you need this record now.", fields={"reason": problem}, keep_evidence=True)
    if await session.get(Patient, patient_id) is None:
        raise NotFound("patient.not_found", "No patient record with this id is available to you.")
    member = await session.scalar(
        select(col(CareTeamMember.id)).where(
            col(CareTeamMember.patient_id) == patient_id,
            col(CareTeamMember.clinician_id) == viewer.user_id,
            col(CareTeamMember.left_at).is_(None),
        )
    )
    if member is not None:
        raise Conflict("break_glass.on_the_care_team", "You are on this patient's care team: open the record directly.")
    grant = BreakGlassGrant(
        patient_id=patient_id, clinician_id=viewer.user_id, reason=reason.strip(), granted_at=now, expires_at=now + BREAK_GLASS_FOR
    )
    session.add(grant)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="patient.break_glass",
        resource_type="break_glass_grant",
        resource_id=grant.id,
        patient_id=patient_id,
        now=now,
    )
    team = await session.execute(
        select(UserAccount)
        .join(CareTeamMember, col(CareTeamMember.clinician_id) == UserAccount.id)
        .where(col(CareTeamMember.patient_id) == patient_id, col(CareTeamMember.left_at).is_(None), col(UserAccount.is_active).is_(True))
    )
    for member_account in team.scalars():
        await queue_email(
            session,
            to=member_account.email,
            template="care_team_update",
            context={"recipient_name": member_account.full_name},
            now=now,
            dedupe_key=f"break_glass:{grant.id}:{member_account.id}",
        )
    return grant


@dataclass(frozen=True)
class GrantToReview:
    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    clinician_name: str
    reason: str
    granted_at: datetime
    expires_at: datetime


async def grants_to_review(session: AsyncSession) -> list[GrantToReview]:
    clinician, patient_user = table_of(UserAccount).alias("clinician"), table_of(UserAccount).alias("patient_user")
    rows = await session.execute(
        select(
            col(BreakGlassGrant.id),
            col(BreakGlassGrant.patient_id),
            patient_user.c.full_name,
            clinician.c.full_name,
            col(BreakGlassGrant.reason),
            col(BreakGlassGrant.granted_at),
            col(BreakGlassGrant.expires_at),
        )
        .join(clinician, clinician.c.id == BreakGlassGrant.clinician_id)
        .join(Patient, col(Patient.id) == BreakGlassGrant.patient_id)
        .join(patient_user, patient_user.c.id == Patient.user_id)
        .where(col(BreakGlassGrant.reviewed_at).is_(None))
        .order_by(col(BreakGlassGrant.granted_at))
    )
    return [GrantToReview(*row) for row in rows.all()]


async def review(session: AsyncSession, *, grant_id: uuid.UUID, note: str, actor: Actor, now: datetime) -> None:
    problem = "is required: what you checked" if not note.strip() else plain_text_problem(note, longest=2000)
    if problem:
        raise InvalidInput("request.invalid", "Write what you checked.", fields={"note": problem})
    reviewed = await session.execute(
        update(BreakGlassGrant)
        .where(col(BreakGlassGrant.id) == grant_id, col(BreakGlassGrant.reviewed_at).is_(None))
        .values(reviewed_at=now, reviewed_by=actor.user_id, review_note=note.strip())
        .returning(col(BreakGlassGrant.patient_id))
    )
    patient_id = reviewed.scalar_one_or_none()
    if patient_id is None:
        raise NotFound("break_glass.not_found", "No unreviewed grant with this id.")
    await record_audit_event(
        session,
        actor=actor,
        action="break_glass.review",
        resource_type="break_glass_grant",
        resource_id=grant_id,
        patient_id=patient_id,
        now=now,
    )
