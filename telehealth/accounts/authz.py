"""Who may see which patient's record: the one object-level check every patient query goes through.

- a patient: only their own record;
- a prescriber or coordinator: any patient of the clinic (they run consults and escalations), audited;
- a therapist: only patients whose care team includes them, audited;
- a pharmacist: no patient records (they see signed plans in the pharmacy queue, minimum necessary).

A refused read answers 404, not 403, so nobody learns which ids exist; the refusal itself is audited.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, exists, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import CareTeamMember, Patient
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import Actor, record_audit_event
from telehealth.lib.errors import NotFound

CLINIC_WIDE_ROLES = frozenset({Role.PRESCRIBER, Role.COORDINATOR})


def visible_patients_clause(viewer: SignedIn) -> ColumnElement[bool]:
    """A WHERE clause on `patient` limiting any list query to the patients this viewer may see."""
    if viewer.role is Role.PATIENT:
        return Patient.user_id == viewer.user_id
    if viewer.role in CLINIC_WIDE_ROLES:
        return true()
    if viewer.role is Role.THERAPIST:
        return exists().where(
            CareTeamMember.patient_id == Patient.id, CareTeamMember.clinician_id == viewer.user_id
        )
    return false()


async def load_patient_for(
    session: AsyncSession,
    *,
    viewer: SignedIn,
    patient_id: uuid.UUID,
    actor: Actor,
    now: datetime,
    purpose: str = "read",
) -> Patient:
    """Load one patient record if `viewer` may see it; audit staff access and every refusal."""
    patient = (
        await session.execute(select(Patient).where(Patient.id == patient_id, visible_patients_clause(viewer)))
    ).scalar_one_or_none()
    if patient is None:
        await record_audit_event(
            session, actor=actor, action=f"patient.record.{purpose}", resource_type="patient",
            resource_id=patient_id, now=now, outcome="denied", reason="not_visible",
        )  # fmt: skip
        raise NotFound("patient.not_found", "No patient record with this id is available to you.", keep_evidence=True)
    if viewer.role is not Role.PATIENT:
        await record_audit_event(
            session, actor=actor, action=f"patient.record.{purpose}", resource_type="patient",
            resource_id=patient.id, patient_id=patient.id, now=now,
        )  # fmt: skip
    return patient


async def patient_id_for_user(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(select(Patient.id).where(Patient.user_id == user_id))


_PATIENT_OF_USER = select(Patient).where(Patient.user_id == bindparam("user_id"))  # built once: nearly every patient request runs it


async def own_patient_record(session: AsyncSession, *, viewer: SignedIn) -> Patient:
    """The signed-in patient's own record (for the patient's own pages and API)."""
    patient = (await session.execute(_PATIENT_OF_USER, {"user_id": viewer.user_id})).scalar_one_or_none()
    if patient is None:
        raise NotFound("patient.not_found", "This account has no patient record.")
    return patient
