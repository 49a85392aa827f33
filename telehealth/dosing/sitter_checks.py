"""The sitter is another person (DOMAIN.md): their contact differs from the patient's, a coordinator verifies
each one by a short call before their first session (SITTER_VERIFICATION_REQUIRED, on by default), a sitter
link opened in the browser where the patient is signed in is refused, and an attestation sent from where the
patient acted is flagged to the prescriber. sitters.py, sessions.py and the attestations call these."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.audit.models import AuditEvent
from telehealth.audit.service import record_audit_event
from telehealth.dosing.alerts import alert_care_team
from telehealth.dosing.models import DosingSession, Sitter, SitterAttestation
from telehealth.dosing.states import SessionStatus, SitterStatus
from telehealth.intake.models import Intake, IntakeSection
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, Forbidden, InvalidInput, NotFound
from telehealth.lib.validation import plain_text_problem
from telehealth.prescribing.models import TrochePlan
from telehealth.settings import Settings

VERIFICATION_METHODS = ("video", "phone")
PATIENTS_BROWSER = "This link is for your sitter. Open it on their phone or computer, not while signed in as the patient."
# How far back the patient's own requests count as "where the patient is": a session day, and the check-in
# (at most an hour before the dose) always falls inside it.
PATIENT_TRAIL = timedelta(hours=24)


# --- another contact ------------------------------------------------------------------------------------


def phone_digits(phone: str | None) -> str:
    """Digits only; a leading US country code dropped, so +1 802 555 0199 and (802) 555-0199 compare equal."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


async def patient_phones(session: AsyncSession, *, patient_id: uuid.UUID) -> set[str]:
    """Every mobile number the patient gave in an intake (a reassessment may have changed it)."""
    answers = await session.execute(
        select(IntakeSection.answers)
        .join(Intake, col(Intake.id) == IntakeSection.intake_id)
        .where(Intake.patient_id == patient_id, IntakeSection.section == "demographics")
    )
    return {digits for (given,) in answers if (digits := phone_digits(given.get("phone")))}


# --- a coordinator's verification -----------------------------------------------------------------------


def is_verified(sitter: Sitter, settings: Settings) -> bool:
    """Verified by a coordinator, or the clinic does not ask for it."""
    return sitter.verified_at is not None or not settings.sitter_verification_required


@dataclass(frozen=True)
class AwaitingVerification:
    sitter: Sitter
    patient_name: str
    next_session_at: datetime | None  # a session already scheduled with them (named before the check was required)


async def sitters_awaiting_verification(session: AsyncSession) -> list[AwaitingVerification]:
    """Sitters who signed the agreement and have not been verified, longest waiting first (operational: the
    sitter's contact, the patient's name, and when a session with them is scheduled; nothing clinical)."""
    next_session = (
        select(func.min(DosingSession.scheduled_at))
        .where(DosingSession.sitter_id == Sitter.id, DosingSession.status == SessionStatus.SCHEDULED)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Sitter, UserAccount.full_name, next_session)
        .join(Patient, col(Patient.id) == Sitter.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(Sitter.status == SitterStatus.CONFIRMED, col(Sitter.verified_at).is_(None))
        .order_by(col(Sitter.signed_at), col(Sitter.id))
    )
    return [AwaitingVerification(sitter, name, at) for sitter, name, at in rows.all()]


async def verify_sitter(session: AsyncSession, *, sitter_id: uuid.UUID, method: str, note: str, actor: Actor, now: datetime) -> Sitter:
    """Record a coordinator's call with a sitter who signed the agreement: how (video or phone), when, who.
    Once per sitter (compare-and-swap: two coordinators at once, one records it)."""
    problems = {}
    if method not in VERIFICATION_METHODS:
        problems["method"] = "must be video or phone"
    if problem := plain_text_problem(note, longest=1000):
        problems["note"] = problem
    if problems:
        raise InvalidInput("request.invalid", "The verification is not recorded yet.", fields=problems)
    sitter = await session.get(Sitter, sitter_id)
    if sitter is None:
        raise NotFound("sitter.not_found", "No sitter with this id.")
    if sitter.status != SitterStatus.CONFIRMED:
        raise Conflict("sitter.not_confirmed", "Only a sitter who has signed the agreement (and not left) can be verified.")
    verified = await session.execute(
        update(Sitter)
        .where(col(Sitter.id) == sitter.id, col(Sitter.status) == SitterStatus.CONFIRMED, col(Sitter.verified_at).is_(None))
        .values(
            verified_at=now, verified_by=actor.user_id, verification_method=method, verification_note=note.strip() or None, updated_at=now
        )
        .returning(col(Sitter.id))
    )
    if verified.scalar_one_or_none() is None:
        raise Conflict("sitter.already_verified", "This sitter has already been verified (or has just left).")
    await record_audit_event(
        session,
        actor=actor,
        action="sitter.verify",
        resource_type="sitter",
        resource_id=sitter.id,
        patient_id=sitter.patient_id,
        now=now,
        reason=method,
    )
    await session.refresh(sitter)
    return sitter


# --- the patient's browser, the patient's address -------------------------------------------------------


async def refuse_patients_browser(session: AsyncSession, sitter: Sitter, *, actor: Actor, now: datetime) -> None:
    """A sitter link used while signed in as this sitter's patient is the patient standing in for their
    sitter: refused (403) and audited; the refusal's audit row is kept (keep_evidence)."""
    if actor.role != Role.PATIENT.value or actor.user_id is None:
        return
    owner = await session.scalar(select(Patient.user_id).where(Patient.id == sitter.patient_id))
    if owner != actor.user_id:
        return  # another patient of the clinic may well sit for a friend
    await record_audit_event(
        session,
        actor=actor,
        action="sitter_link.open",
        resource_type="sitter",
        resource_id=sitter.id,
        patient_id=sitter.patient_id,
        now=now,
        outcome="denied",
        reason="patient_signed_in",
    )
    raise Forbidden("sitter_link.patient_signed_in", PATIENTS_BROWSER, keep_evidence=True)


async def same_as_patient(session: AsyncSession, *, patient_id: uuid.UUID, actor: Actor, now: datetime) -> str | None:
    """'device' when the request comes from the address and browser (user agent) the patient used in the
    last day, 'address' when only the address matches, else None.

    Read from the patient's own audit events, not from `user_session`: every sign-in and every action
    (the check-in just before the dose among them) is an event carrying its address and user agent, the
    table is append-only, and it keeps them; a session row holds only the sign-in's address (a phone that
    changed network since is missed) and is pruned a day after it ends. A user agent alone is not
    compared: the same phone model and browser version is shared by millions."""
    if not actor.ip or actor.ip == "unknown":
        return None
    user_id = await session.scalar(select(Patient.user_id).where(Patient.id == patient_id))
    agents = (
        (
            await session.execute(
                select(AuditEvent.user_agent)
                .distinct()
                .where(
                    AuditEvent.actor_user_id == user_id,
                    AuditEvent.ip == actor.ip,
                    AuditEvent.occurred_at >= now - PATIENT_TRAIL,
                    AuditEvent.occurred_at <= now,
                )
            )
        )
        .scalars()
        .all()
    )
    if not agents:
        return None
    agent = (actor.user_agent or "")[:400] or None  # as record_audit_event stores it
    return "device" if agent in agents else "address"


async def flag_for_prescriber(
    session: AsyncSession, attestation: SitterAttestation, plan: TrochePlan, *, now: datetime, alerted: bool = False
) -> None:
    """An attestation marked `same_as_patient` is audited and the care team gets the detail-free email
    (unless another alert about this attestation has just gone: one email, not two); the prescriber's view
    of the session shows the flag."""
    if attestation.same_as_patient is None:
        return
    await record_audit_event(
        session,
        actor=Actor.system(),
        action="sitter_attestation.flag",
        resource_type="dosing_session",
        resource_id=attestation.dosing_session_id,
        patient_id=plan.patient_id,
        now=now,
        reason=f"{attestation.kind}_from_patients_{attestation.same_as_patient}",
    )
    if not alerted:
        await alert_care_team(session, plan, template="care_team_update", key=f"sitter_same_as_patient:{attestation.id}", now=now)
