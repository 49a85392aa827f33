"""Care teams form from what happens: the prescriber of a booked consult or reassessment, the therapist of a
booked integration session and the prescriber who signs a plan join the patient's care team; a coordinator
assigns or replaces a clinician with a reason, and the patient is told. Membership keeps its history: a
clinician who leaves loses access, and what they wrote stays in the record.

Changes to one patient's team take turns (the patient's lock, accounts/locks.py); a replacement names the
member it replaces, so of two coordinators changing the same clinician at once exactly one wins (409 for
the other)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.locks import lock_patient
from telehealth.accounts.models import CareTeamMember, Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.audit.service import record_audit_event
from telehealth.db import driver
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, Forbidden, InvalidInput, NotFound
from telehealth.lib.validation import plain_text_problem
from telehealth.notifications.service import queue_email

CLINICIAN_ROLES = (Role.PRESCRIBER.value, Role.THERAPIST.value)


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    clinician_id: uuid.UUID
    full_name: str
    role: str
    joined_at: datetime
    joined_because: str
    left_at: datetime | None
    left_because: str | None


# Every booking confirmed and every plan signed: on the driver (db/driver.py). A current member already (the
# partial unique index) is a no-op.
_JOIN = """
INSERT INTO care_team_member (id, patient_id, clinician_id, added_at, joined_because) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (patient_id, clinician_id) WHERE left_at IS NULL DO NOTHING RETURNING id
"""


async def join(session: AsyncSession, *, patient_id: uuid.UUID, clinician_id: uuid.UUID, because: str, now: datetime) -> bool:
    """The clinician joins the patient's care team because of what just happened (no-op when a current
    member already); answers whether they are new."""
    member_id = await driver.fetchval(session, _JOIN, uuid.uuid4(), patient_id, clinician_id, driver.utc(now), because)
    if member_id is not None:
        await record_audit_event(
            session,
            actor=Actor.system(),
            action="care_team.join",
            resource_type="care_team_member",
            resource_id=member_id,
            patient_id=patient_id,
            now=now,
            reason=because,
        )
    return member_id is not None


async def is_member(session: AsyncSession, *, patient_id: uuid.UUID, clinician_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(
            select(CareTeamMember.id).where(
                CareTeamMember.patient_id == patient_id, CareTeamMember.clinician_id == clinician_id, col(CareTeamMember.left_at).is_(None)
            )
        )
    )


# Every patient's home and chart lists the team: on the driver (db/driver.py).
_MEMBERS = """
SELECT member.id, member.clinician_id, account.full_name, account.role, member.added_at, member.joined_because,
       member.left_at, member.left_because
FROM care_team_member AS member JOIN user_account AS account ON account.id = member.clinician_id
WHERE member.patient_id = $1 AND ($2 OR member.left_at IS NULL)
ORDER BY member.added_at
"""


async def members(session: AsyncSession, *, patient_id: uuid.UUID, with_history: bool = False) -> list[Member]:
    return [Member(*row) for row in await driver.fetch(session, _MEMBERS, patient_id, with_history)]


def _reason_problem(reason: str) -> str | None:
    if not reason.strip():
        return "is required: why the care team changes"
    return plain_text_problem(reason, longest=1000)


async def assign(
    session: AsyncSession,
    *,
    patient_id: uuid.UUID,
    clinician_id: uuid.UUID,
    replaces: uuid.UUID | None,
    reason: str,
    actor: Actor,
    now: datetime,
) -> Member:
    """A coordinator puts a prescriber or therapist on the team, in place of `replaces` (a current member's
    id) or beside the others. The patient is told (an email with no detail; names on their page). Only a
    coordinator changes a team (here, not only in the route guards: every caller comes through this)."""
    if actor.role != Role.COORDINATOR.value:
        await record_audit_event(
            session,
            actor=actor,
            action="care_team.assign",
            resource_type="patient",
            resource_id=patient_id,
            now=now,
            outcome="denied",
            reason="role",
        )
        raise Forbidden("care_team.coordinator_only", "Only a coordinator changes a care team.", keep_evidence=True)
    problems = {}
    if problem := _reason_problem(reason):
        problems["reason"] = problem
    clinician = await session.get(UserAccount, clinician_id)
    if clinician is None or clinician.role not in CLINICIAN_ROLES or not clinician.is_active:
        problems["clinician_id"] = "must be an active prescriber or therapist"
    if problems:
        raise InvalidInput("request.invalid", "The care team was not changed.", fields=problems)
    assert clinician is not None  # else problems["clinician_id"] was raised just above
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise NotFound("patient.not_found", "No patient record with this id is available to you.")
    await lock_patient(session, patient_id)
    if replaces is not None:
        left = await session.execute(
            update(CareTeamMember)
            .where(col(CareTeamMember.id) == replaces, col(CareTeamMember.patient_id) == patient_id, col(CareTeamMember.left_at).is_(None))
            .values(left_at=now, left_because=reason.strip(), left_by=actor.user_id)
            .returning(col(CareTeamMember.clinician_id))
        )
        if left.scalar_one_or_none() is None:
            raise Conflict(
                "care_team.changed",
                "That clinician is no longer on this care team: someone changed it meanwhile. Reload and try again.",
                fields={"replaces": "is not a current member"},
            )
        await record_audit_event(
            session,
            actor=actor,
            action="care_team.leave",
            resource_type="care_team_member",
            resource_id=replaces,
            patient_id=patient_id,
            now=now,
            reason="replaced",
        )
    inserted = await session.execute(
        insert(CareTeamMember)
        .values(
            id=uuid.uuid4(),
            patient_id=patient_id,
            clinician_id=clinician_id,
            added_at=now,
            joined_because="assigned",
            added_by=actor.user_id,
        )
        .on_conflict_do_nothing(index_elements=["patient_id", "clinician_id"], index_where=col(CareTeamMember.left_at).is_(None))
        .returning(col(CareTeamMember.id))
    )
    member_id = inserted.scalar_one_or_none()
    if member_id is None:
        raise Conflict(
            "care_team.already_member",
            f"{clinician.full_name} is on this care team already.",
            fields={"clinician_id": "is a member already"},
        )
    await record_audit_event(
        session,
        actor=actor,
        action="care_team.assign",
        resource_type="care_team_member",
        resource_id=member_id,
        patient_id=patient_id,
        now=now,
    )
    user = await session.get(UserAccount, patient.user_id)
    assert user is not None
    await queue_email(
        session,
        to=user.email,
        template="portal_update",
        context={"recipient_name": user.full_name},
        now=now,
        dedupe_key=f"care_team:{member_id}",
    )
    return next(member for member in await members(session, patient_id=patient_id) if member.id == member_id)
