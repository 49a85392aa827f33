"""Who may see which patient's record: the one object-level check every patient query goes through.

Minimum necessary, by relationship (DOMAIN.md):
- a patient: only their own record;
- clinical detail (intake answers, scores and charts, notes, encounters, plans, messages, the record and its
  export): the patient's care team, i.e. its current prescribers and therapists, or a clinician holding a
  live break-glass grant (care_teams/break_glass.py);
- operational facts (contact details, journey status, payments): the care team and coordinators;
- clinic-wide facts a prescriber acts on before any care team exists: an open escalation (that it is open,
  and recording contact: prescribers are alerted to every crisis, even at intake) and in-person evaluations
  (the prescribing basis, often recorded before the telemedicine relationship): coordinators and
  prescribers, and the care team's therapists;
- a pharmacist: no patient records (they see what filling needs in their pharmacy's queue).

A refused read answers 404, not 403, so nobody learns which ids exist; the refusal itself is audited, and so
is every staff read (a break-glass read names its grant).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, exists, false, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import BreakGlassGrant, CareTeamMember, Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.db import driver
from telehealth.lib.actors import Actor
from telehealth.lib.errors import NotFound


class Access(StrEnum):
    CLINICAL = "clinical"
    OPERATIONAL = "operational"
    CLINIC_WIDE = "clinic_wide"


CLINICIANS = frozenset({Role.PRESCRIBER, Role.THERAPIST})


def on_care_team(clinician_id: uuid.UUID) -> ColumnElement[bool]:
    return exists().where(
        col(CareTeamMember.patient_id) == Patient.id,
        col(CareTeamMember.clinician_id) == clinician_id,
        col(CareTeamMember.left_at).is_(None),
    )


def visible_patients_clause(viewer: SignedIn, access: Access = Access.CLINICAL) -> ColumnElement[bool]:
    """A WHERE clause on `patient` limiting any list query to the patients this viewer may see for `access`
    (break-glass grants open single records, never lists)."""
    if viewer.role is Role.PATIENT:
        return col(Patient.user_id) == viewer.user_id
    if viewer.role is Role.COORDINATOR:
        return false() if access is Access.CLINICAL else true()
    if viewer.role is Role.PRESCRIBER and access is Access.CLINIC_WIDE:
        return true()
    if viewer.role in CLINICIANS:
        return on_care_team(viewer.user_id)
    return false()


async def live_grant(session: AsyncSession, *, patient_id: uuid.UUID, clinician_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
    """The clinician's break-glass grant on this patient that is live at `now` (care_teams/break_glass.py grants them)."""
    return await session.scalar(
        select(BreakGlassGrant.id)
        .where(
            BreakGlassGrant.patient_id == patient_id,
            BreakGlassGrant.clinician_id == clinician_id,
            BreakGlassGrant.granted_at <= now,
            BreakGlassGrant.expires_at > now,
        )
        .limit(1)
    )


async def load_patient_for(
    session: AsyncSession,
    *,
    viewer: SignedIn,
    patient_id: uuid.UUID,
    actor: Actor,
    now: datetime,
    purpose: str = "read",
    access: Access = Access.CLINICAL,
) -> Patient:
    """Load one patient record if `viewer` may see it for `access`; audit staff access and every refusal."""
    patient = (
        await session.execute(select(Patient).where(Patient.id == patient_id, visible_patients_clause(viewer, access)))
    ).scalar_one_or_none()
    grant = None
    if (
        patient is None
        and viewer.role in CLINICIANS
        and (grant := await live_grant(session, patient_id=patient_id, clinician_id=viewer.user_id, now=now)) is not None
    ):
        patient = await session.get(Patient, patient_id)
    if patient is None:
        await record_audit_event(
            session,
            actor=actor,
            action=f"patient.record.{purpose}",
            resource_type="patient",
            resource_id=patient_id,
            now=now,
            outcome="denied",
            reason="not_visible",
        )
        raise NotFound("patient.not_found", "No patient record with this id is available to you.", keep_evidence=True)
    if viewer.role is not Role.PATIENT:
        await record_audit_event(
            session,
            actor=actor,
            action=f"patient.record.{purpose}",
            resource_type="patient",
            resource_id=patient.id,
            patient_id=patient.id,
            now=now,
            reason=f"break_glass:{grant}" if grant else None,
        )
    return patient


async def patient_id_for_user(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(select(Patient.id).where(Patient.user_id == user_id))


async def own_patient_record(session: AsyncSession, *, viewer: SignedIn) -> Patient:
    """The signed-in patient's own record (for the patient's own pages and API), read on the driver (db/driver.py):
    nearly every patient request reads it."""
    patient = await driver.load(session, Patient, viewer.user_id, by="user_id")
    if patient is None:
        raise NotFound("patient.not_found", "This account has no patient record.")
    return patient
