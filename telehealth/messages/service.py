"""Messages: the patient writes to their care team, a clinician or coordinator who may see the patient
answers. Emails only say there is a new message. A patient's message is unanswered until someone on the
care team writes after it; staff see those waiting more than one business day."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import Access, visible_patients_clause
from telehealth.accounts.models import CareTeamMember, Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.service import patient_contact
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput
from telehealth.lib.validation import plain_text_problem
from telehealth.messages.models import CareMessage
from telehealth.notifications.service import queue_email
from telehealth.prescribing.models import TrochePlan

MAX_BODY = 4000


def business_days_before(moment: datetime, days: int) -> datetime:
    """`moment` moved back over `days` weekdays (Saturday and Sunday do not count)."""
    while days > 0:
        moment -= timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    return moment


async def thread(session: AsyncSession, *, patient_id: uuid.UUID) -> list[tuple[CareMessage, str]]:
    rows = await session.execute(
        select(CareMessage, UserAccount.full_name)
        .join(UserAccount, col(UserAccount.id) == CareMessage.author_user_id)
        .where(CareMessage.patient_id == patient_id)
        .order_by(col(CareMessage.sent_at), col(CareMessage.id))
    )
    return [(message, name) for message, name in rows.all()]


async def _care_team(session: AsyncSession, patient_id: uuid.UUID) -> list[UserAccount]:
    """Who hears of a patient's message: the clinicians on their care team and the prescriber of their plans."""
    prescribers = select(TrochePlan.prescriber_id).where(TrochePlan.patient_id == patient_id)
    members = select(CareTeamMember.clinician_id).where(CareTeamMember.patient_id == patient_id, col(CareTeamMember.left_at).is_(None))
    return list(
        (
            await session.execute(
                select(UserAccount).where(col(UserAccount.is_active).is_(True), col(UserAccount.id).in_(prescribers.union(members)))
            )
        ).scalars()
    )


async def send(session: AsyncSession, *, patient: Patient, author: SignedIn, body: str, actor: Actor, now: datetime) -> CareMessage:
    text = body.strip()
    if not text:
        raise InvalidInput("request.invalid", "Write your message first.", fields={"body": "is required"})
    if problem := plain_text_problem(text, longest=MAX_BODY):
        raise InvalidInput("request.invalid", f"A message is plain text of at most {MAX_BODY} characters.", fields={"body": problem})
    message = CareMessage(patient_id=patient.id, author_user_id=author.user_id, author_role=author.role.value, body=text, sent_at=now)
    session.add(message)
    await session.flush()
    await record_audit_event(
        session,
        actor=actor,
        action="care_message.send",
        resource_type="care_message",
        resource_id=message.id,
        patient_id=patient.id,
        now=now,
    )
    if author.role is Role.PATIENT:
        recipients = [(member.email, member.full_name) for member in await _care_team(session, patient.id)]
    else:
        contact = await patient_contact(session, patient.id)
        recipients = [(contact.email, contact.full_name)]
    for email, name in recipients:
        await queue_email(
            session, to=email, template="new_message", context={"recipient_name": name}, now=now, dedupe_key=f"message:{message.id}:{email}"
        )
    return message


@dataclass(frozen=True)
class Waiting:
    patient_id: uuid.UUID
    patient_name: str
    waiting_since: datetime


async def unanswered(session: AsyncSession, *, viewer: SignedIn, now: datetime, business_days: int = 1) -> list[Waiting]:
    """Patients this viewer may see whose newest message is theirs and older than `business_days`."""
    newest = select(CareMessage.patient_id, func.max(CareMessage.sent_at).label("last_at")).group_by(col(CareMessage.patient_id)).subquery()
    rows = await session.execute(
        select(Patient.id, UserAccount.full_name, newest.c.last_at)
        .join(newest, newest.c.patient_id == Patient.id)
        .join(CareMessage, (col(CareMessage.patient_id) == Patient.id) & (col(CareMessage.sent_at) == newest.c.last_at))
        .join(UserAccount, col(UserAccount.id) == Patient.user_id)
        .where(
            visible_patients_clause(viewer, Access.OPERATIONAL),
            CareMessage.author_role == Role.PATIENT.value,
            newest.c.last_at <= business_days_before(now, business_days),
        )
        .order_by(newest.c.last_at)
    )
    return [Waiting(patient_id, name, since) for patient_id, name, since in rows.all()]
