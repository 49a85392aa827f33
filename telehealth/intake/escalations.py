"""Escalations: a crisis answer opens one at once, alerts coordinators and prescribers (an email with no
details, and the escalation on their dashboards), and blocks self-booking until a clinician records contact."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telehealth.accounts.authz import Access, load_patient_for, visible_patients_clause
from telehealth.accounts.locks import lock_patient
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import change_status, record_audit_event
from telehealth.db import driver
from telehealth.intake.models import Escalation
from telehealth.intake.states import ESCALATION_TRANSITIONS, EscalationStatus
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput, NotFound
from telehealth.notifications.service import queue_email
from telehealth.settings import Settings

ALERTED_ROLES = (Role.COORDINATOR, Role.PRESCRIBER)
CONTACT_RECORDING_ROLES = frozenset({Role.PRESCRIBER, Role.THERAPIST})  # clinicians


async def _open(
    session: AsyncSession, *, patient_id: uuid.UUID, kind: str, rule_ids: list[str], actor: Actor, now: datetime
) -> uuid.UUID | None:
    """Open an escalation of `kind` unless one is open already (a unique index): its id, or None."""
    await lock_patient(session, patient_id)  # an unlock in flight either finished first or sees this one
    inserted = await session.execute(
        insert(Escalation)
        .values(
            id=uuid.uuid4(),
            patient_id=patient_id,
            kind=kind,
            status=EscalationStatus.OPEN,
            rule_ids=",".join(rule_ids)[:300],
            opened_at=now,
        )
        .on_conflict_do_nothing(index_elements=["patient_id", "kind"], index_where=col(Escalation.status) == EscalationStatus.OPEN)
        .returning(col(Escalation.id))
    )
    escalation_id = inserted.scalar_one_or_none()
    if escalation_id is not None:
        await record_audit_event(
            session,
            actor=actor,
            action="escalation.open",
            resource_type="escalation",
            resource_id=escalation_id,
            patient_id=patient_id,
            reason=kind,
            now=now,
        )
    return escalation_id


async def open_crisis_escalation(
    session: AsyncSession, *, patient_id: uuid.UUID, rule_ids: list[str], actor: Actor, now: datetime, settings: Settings
) -> bool:
    """Open a crisis escalation unless one is already open for this patient; answer whether it is new."""
    escalation_id = await _open(session, patient_id=patient_id, kind="crisis", rule_ids=rule_ids, actor=actor, now=now)
    if escalation_id is None:
        return False
    staff = (
        (
            await session.execute(
                select(UserAccount).where(
                    col(UserAccount.role).in_([role.value for role in ALERTED_ROLES]), col(UserAccount.is_active).is_(True)
                )
            )
        )
        .scalars()
        .all()
    )
    for member in staff:
        await queue_email(
            session,
            to=member.email,
            template="staff_escalation",
            context={"recipient_name": member.full_name},
            now=now,
            dedupe_key=f"escalation:{escalation_id}:{member.id}",
        )
    return True


async def open_contact_request(
    session: AsyncSession, *, patient_id: uuid.UUID, rule_ids: list[str], actor: Actor, now: datetime
) -> uuid.UUID | None:
    """Ask the care team to reach the patient (not a crisis: self-booking stays open). Its id when new, for
    the caller to alert the care team it knows; None when one is open already."""
    return await _open(session, patient_id=patient_id, kind="contact", rule_ids=rule_ids, actor=actor, now=now)


# The booking and unlock gates and every visit to the patient's home ask this: on the driver (db/driver.py),
# compiled once from the rule.
_OPEN_OF_KIND = driver.compiled(
    select(col(Escalation.id))
    .where(
        col(Escalation.patient_id) == bindparam("patient_id"),
        col(Escalation.kind) == bindparam("kind"),
        col(Escalation.status) == EscalationStatus.OPEN,
    )
    .limit(1)
)


async def _open_of_kind(session: AsyncSession, *, patient_id: uuid.UUID, kind: str) -> bool:
    return await driver.fetchval(session, _OPEN_OF_KIND.sql, *_OPEN_OF_KIND.args(patient_id=patient_id, kind=kind)) is not None


async def has_open_crisis(session: AsyncSession, *, patient_id: uuid.UUID) -> bool:
    """The self-booking gate: True while a crisis escalation waits for a clinician's contact."""
    return await _open_of_kind(session, patient_id=patient_id, kind="crisis")


async def has_open_contact_request(session: AsyncSession, *, patient_id: uuid.UUID) -> bool:
    """An unlock gate: True while a check-in's contact request waits for a clinician's contact."""
    return await _open_of_kind(session, patient_id=patient_id, kind="contact")


# What set an escalation off, in the words a clinician on the phone needs (rule ids are for the audit).
TRIGGER_WORDS = {
    "crisis.phq9_item9_nearly_every_day": (
        "Intake or reassessment: thoughts of being better off dead or of self-harm nearly every day (PHQ-9 item 9)"
    ),
    "crisis.cssrs_intent_or_plan": "Suicide screen: thoughts with some intention of acting, or a worked-out plan (C-SSRS 4 or 5)",
    "crisis.cssrs_recent_behavior": "Suicide screen: something done or prepared to end their life within the past 3 months (C-SSRS 6)",
    "dosing.check_in.phq9_9": "Check-in before a dose: thoughts of self-harm nearly every day; today's dose is held",
    "dosing.check_in.phq9_9_some_days": (
        "Check-in before a dose: thoughts of self-harm on some days; asked to be called before the next dose"
    ),
    "dosing.report.suicidal_thoughts": "After a dose: the patient reported thoughts of suicide",
}


@dataclass(frozen=True)
class OpenEscalation:
    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    kind: str
    opened_at: datetime
    triggers: tuple[str, ...] = ()
    phone: str | None = None  # whom to call: the intake's number, else the waiting list's
    emergency_contact: str | None = None
    owners: tuple[str, ...] = ()  # the care team's clinicians: whose call it is


def triggers_in_words(rule_ids: str) -> tuple[str, ...]:
    return tuple(TRIGGER_WORDS.get(rule_id, "A safety answer needs a clinician's contact") for rule_id in rule_ids.split(",") if rule_id)


async def count_open_escalations(session: AsyncSession, *, viewer: SignedIn) -> int:
    """How many open escalations this viewer may see (for dashboards: a number, no names)."""
    return (
        await session.scalar(
            select(func.count())
            .select_from(Escalation)
            .join(Patient, col(Patient.id) == Escalation.patient_id)
            .where(col(Escalation.status) == EscalationStatus.OPEN, visible_patients_clause(viewer, Access.CLINIC_WIDE))
        )
        or 0
    )


async def open_escalations(session: AsyncSession, *, viewer: SignedIn, actor: Actor, now: datetime) -> list[OpenEscalation]:
    """The open escalations of the patients this viewer may see, oldest first; the listing is audited
    because it names patients."""
    rows = await session.execute(
        select(
            col(Escalation.id),
            col(Escalation.patient_id),
            col(UserAccount.full_name),
            col(Escalation.kind),
            col(Escalation.opened_at),
            col(Escalation.rule_ids),
        )
        .join(Patient, col(Patient.id) == Escalation.patient_id)
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(col(Escalation.status) == EscalationStatus.OPEN, visible_patients_clause(viewer, Access.CLINIC_WIDE))
        .order_by(col(Escalation.opened_at))
    )
    escalations = []
    for row in rows.all():
        reach = await how_to_reach(session, patient_id=row.patient_id)
        escalations.append(
            OpenEscalation(
                row.id,
                row.patient_id,
                row.full_name,
                row.kind,
                row.opened_at,
                triggers_in_words(row.rule_ids),
                phone=reach.phone,
                emergency_contact=reach.emergency_contact,
                owners=reach.care_team,
            )
        )
    await record_audit_event(
        session, actor=actor, action="escalation.list", resource_type="escalation", now=now, reason=f"{len(escalations)} shown"
    )
    return escalations


async def escalations_of(session: AsyncSession, *, patient_id: uuid.UUID) -> list[Escalation]:
    """Every escalation of one patient, open or closed, newest first (for the patient's clinician page)."""
    return list(
        (
            await session.execute(
                select(Escalation).where(col(Escalation.patient_id) == patient_id).order_by(col(Escalation.opened_at).desc())
            )
        ).scalars()
    )


@dataclass(frozen=True)
class Reach:
    phone: str | None
    emergency_contact: str | None
    care_team: tuple[str, ...]


_REACH = text("""
    SELECT
      (SELECT s.answers->>'phone' FROM intake_section s JOIN intake i ON i.id = s.intake_id
        WHERE i.patient_id = :patient AND s.section = 'demographics' ORDER BY i.started_at DESC LIMIT 1) AS intake_phone,
      (SELECT w.phone FROM waitlist_entry w WHERE w.patient_id = :patient LIMIT 1) AS waitlist_phone,
      (SELECT s.answers FROM intake_section s JOIN intake i ON i.id = s.intake_id
        WHERE i.patient_id = :patient AND s.section = 'emergency_contact' ORDER BY i.started_at DESC LIMIT 1) AS emergency,
      (SELECT array_agg(u.full_name || ' (' || u.role || ')' ORDER BY u.role, u.full_name) FROM care_team_member m
         JOIN user_account u ON u.id = m.clinician_id WHERE m.patient_id = :patient AND m.left_at IS NULL) AS team
""")


async def how_to_reach(session: AsyncSession, *, patient_id: uuid.UUID) -> Reach:
    """The phone numbers an escalation's clinician needs, and the care team whose call it is: contact
    details, not clinical answers (the operational view may see them)."""
    row = (await session.execute(_REACH, {"patient": patient_id})).one()
    emergency = row.emergency or {}
    contact = ", ".join(part for part in (emergency.get("name"), emergency.get("relationship"), emergency.get("phone")) if part) or None
    return Reach(row.intake_phone or row.waitlist_phone, contact, tuple(row.team or ()))


async def record_contact(
    session: AsyncSession, *, escalation_id: uuid.UUID, viewer: SignedIn, note: str, actor: Actor, now: datetime
) -> None:
    """A clinician of the patient's care team spoke with them: the escalation closes and self-booking
    opens again."""
    if viewer.role not in CONTACT_RECORDING_ROLES:
        raise InvalidInput("escalation.clinician_only", "Only a clinician can record contact.", fields={"role": "must be a clinician"})
    if not note.strip():
        raise InvalidInput("escalation.note_required", "Say how and when you reached the patient.", fields={"note": "is required"})
    escalation = await session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound("escalation.not_found", "There is no such escalation.")
    await load_patient_for(
        session,
        viewer=viewer,
        patient_id=escalation.patient_id,
        actor=actor,
        now=now,
        purpose="escalation.record_contact",
        access=Access.CLINIC_WIDE,
    )
    await change_status(
        session,
        Escalation,
        escalation.id,
        table=ESCALATION_TRANSITIONS,
        source=EscalationStatus.OPEN,
        target=EscalationStatus.CONTACT_RECORDED,
        actor=actor,
        now=now,
        patient_id=escalation.patient_id,
        values={"contact_recorded_at": now, "contact_recorded_by": actor.user_id, "contact_note": note.strip()[:4000]},
    )
