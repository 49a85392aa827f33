"""Sitters: the patient names them (someone else: not the patient's email, name or phone), each signs the
versioned sitter agreement through a link of their own (no account), or declines; the patient can remove
one, and a sitter can withdraw from any of their live links. Links are random tokens stored hashed, each
for one sitter and one purpose, expiring, spent once, withdrawn when the sitter leaves, and refused in the
browser where the sitter's patient is signed in (sitter_checks.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.locks import lock_patient
from telehealth.accounts.models import Patient
from telehealth.accounts.security import hash_token, new_token
from telehealth.accounts.service import email_problem, normalize_email, patient_contact
from telehealth.audit.service import change_status, record_audit_event
from telehealth.dosing.models import DosingSession, Sitter, SitterLink
from telehealth.dosing.sitter_checks import patient_phones, phone_digits, refuse_patients_browser
from telehealth.dosing.sitter_mail import email_sitter
from telehealth.dosing.states import ACTIVE_SITTER, SITTER_TRANSITIONS, LinkPurpose, SessionStatus, SitterStatus
from telehealth.intake.consents import ConsentDocument
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, Gone, InvalidInput, NotFound, TooManyRequests
from telehealth.lib.names import first_name
from telehealth.lib.validation import has_control_characters
from telehealth.notifications.service import queue_email
from telehealth.settings import Settings
from telehealth.system.rate_limit import over_rate_limit

SITTER_AGREEMENT = ConsentDocument("sitter_agreement", "Sitter agreement", "2026-1")
AGREEMENT_LINK_VALID = timedelta(days=7)
MAX_ACTIVE_SITTERS = 5
# Invitations are emails a patient makes us send to someone else: (bucket, limit) per day, per patient, per client
# address, and per recipient (so no one is flooded with invitations, whoever asks). Refused openly: nothing to hide.
INVITATION_LIMITS = (("sitter_invitation", 10), ("sitter_invitation_ip", 20), ("sitter_invitation_to", 3))
INVITATION_WINDOW = timedelta(hours=24)


def same_name(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _text(value: str, field: str, *, required: bool, longest: int) -> dict[str, str]:
    if required and not value.strip():
        return {field: "is required"}
    if len(value) > longest:
        return {field: f"must be at most {longest} characters"}
    if has_control_characters(value):
        return {field: "must be plain text"}
    return {}


async def issue_link(
    session: AsyncSession,
    *,
    sitter_id: uuid.UUID,
    purpose: LinkPurpose,
    now: datetime,
    expires_at: datetime,
    dosing_session_id: uuid.UUID | None = None,
) -> str:
    """A new link for one sitter and one purpose; the raw token goes into the email, only its hash is kept."""
    raw, digest = new_token()
    session.add(
        SitterLink(
            token_hash=digest,
            sitter_id=sitter_id,
            purpose=purpose,
            dosing_session_id=dosing_session_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return raw


@dataclass(frozen=True)
class OpenLink:
    link: SitterLink
    sitter: Sitter

    @property
    def session_id(self) -> uuid.UUID:
        """The session of a link for one (every purpose but the agreement's: ck_sitter_link_session_links_name_a_session)."""
        assert self.link.dosing_session_id is not None, self.link.purpose
        return self.link.dosing_session_id


async def open_link(session: AsyncSession, *, token: str, purpose: LinkPurpose | None, actor: Actor, now: datetime) -> OpenLink:
    """The link behind a token, if it may still do `purpose` (a link never acts for another purpose); with
    no purpose, whatever it is for (to show the sitter what it can do). Refused (403, audited) to a browser
    signed in as the sitter's patient: every use of a link passes here, so none can forget it."""
    link = await session.get(SitterLink, hash_token(token))
    if link is None or (purpose is not None and link.purpose != purpose):
        raise NotFound("sitter_link.not_found", "This link is not known. Use the newest link we emailed you.")
    sitter = await session.get(Sitter, link.sitter_id)
    assert sitter is not None  # the foreign key guarantees it
    await refuse_patients_browser(session, sitter, actor=actor, now=now)
    if link.revoked_at is not None or link.used_at is not None or link.expires_at <= now:
        why = "was withdrawn" if link.revoked_at else "was already used" if link.used_at else "has expired"
        raise Gone("sitter_link.gone", f"This link {why}. Ask the person who named you to send a new one.", fields={"token": why})
    return OpenLink(link, sitter)


async def spend_link(session: AsyncSession, *, token: str, purpose: LinkPurpose, actor: Actor, now: datetime) -> OpenLink:
    """Use a link once (compare-and-swap: two submits at once, one wins)."""
    opened = await open_link(session, token=token, purpose=purpose, actor=actor, now=now)
    spent = await session.execute(
        update(SitterLink)
        .where(
            col(SitterLink.token_hash) == opened.link.token_hash, col(SitterLink.used_at).is_(None), col(SitterLink.revoked_at).is_(None)
        )
        .values(used_at=now)
        .returning(col(SitterLink.token_hash))
    )
    if spent.scalar_one_or_none() is None:
        raise Gone("sitter_link.gone", "This link was already used.", fields={"token": "was already used"})
    return opened


async def revoke_links(
    session: AsyncSession, *, now: datetime, sitter_id: uuid.UUID | None = None, dosing_session_id: uuid.UUID | None = None
) -> None:
    """Withdraw every unspent link of a sitter, or of a session."""
    where: list[ColumnElement[bool]] = [col(SitterLink.used_at).is_(None), col(SitterLink.revoked_at).is_(None)]
    where.append(
        col(SitterLink.sitter_id) == sitter_id if sitter_id is not None else col(SitterLink.dosing_session_id) == dosing_session_id
    )
    await session.execute(update(SitterLink).where(*where).values(revoked_at=now))


async def patient_sitters(session: AsyncSession, *, patient_id: uuid.UUID) -> list[Sitter]:
    return list((await session.execute(select(Sitter).where(Sitter.patient_id == patient_id).order_by(col(Sitter.created_at)))).scalars())


async def own_sitter(session: AsyncSession, *, patient: Patient, sitter_id: uuid.UUID) -> Sitter:
    sitter = await session.get(Sitter, sitter_id)
    if sitter is None or sitter.patient_id != patient.id:
        raise NotFound("sitter.not_found", "No sitter with this id is yours.")
    return sitter


async def _count_invitation(session: AsyncSession, *, patient: Patient, to: str, actor: Actor, now: datetime) -> None:
    """Count one invitation email, or refuse (429) when a limit of INVITATION_LIMITS is reached (nothing counted)."""
    keys = {
        "sitter_invitation": str(patient.id),
        "sitter_invitation_ip": actor.ip or "unknown",
        "sitter_invitation_to": hash_token(f"sitter:{normalize_email(to)}"),
    }
    for bucket, limit in INVITATION_LIMITS:
        if await over_rate_limit(session, bucket=bucket, key=keys[bucket], limit=limit, window=INVITATION_WINDOW, now=now):
            raise TooManyRequests(
                "sitter.invitation_limit",
                "Too many sitter invitations have been sent today. Try again tomorrow, or call the clinic.",
                fields={"email": "too many invitations today"},
            )


async def _send_agreement_link(session: AsyncSession, sitter: Sitter, *, patient_full_name: str, now: datetime, settings: Settings) -> None:
    raw = await issue_link(session, sitter_id=sitter.id, purpose=LinkPurpose.AGREEMENT, now=now, expires_at=now + AGREEMENT_LINK_VALID)
    await queue_email(
        session,
        to=sitter.email,
        template="sitter_invitation",
        context={
            "recipient_name": sitter.full_name,
            "patient_first_name": first_name(patient_full_name),
            "link_url": f"{settings.public_base_url}/sitter/{raw}",
        },
        now=now,
        dedupe_key=f"sitter_invitation:{sitter.id}:{raw[:12]}",
    )


async def add_sitter(
    session: AsyncSession,
    *,
    patient: Patient,
    full_name: str,
    email: str,
    phone: str,
    relationship: str,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> Sitter:
    """Name a sitter: they are emailed the agreement to sign. The patient can never be their own sitter."""
    problems = (
        _text(full_name, "full_name", required=True, longest=200)
        | _text(relationship, "relationship", required=True, longest=100)
        | _text(phone, "phone", required=False, longest=40)
    )
    if problem := email_problem(email):
        problems["email"] = problem
    patient_user = await patient_contact(session, patient.id)
    if "email" not in problems and normalize_email(email) == normalize_email(patient_user.email):
        problems["email"] = "must be someone else's: you cannot be your own sitter"
    if "full_name" not in problems and same_name(full_name, patient_user.full_name):
        problems["full_name"] = "must be someone else's: you cannot be your own sitter"
    if "phone" not in problems and phone_digits(phone) and phone_digits(phone) in await patient_phones(session, patient_id=patient.id):
        problems["phone"] = "must be someone else's: this is the number you gave us as yours"
    if problems:
        raise InvalidInput("request.invalid", "Some details of your sitter need another look.", fields=problems)
    active = [s for s in await patient_sitters(session, patient_id=patient.id) if s.status in ACTIVE_SITTER]
    if any(normalize_email(s.email) == normalize_email(email) for s in active):
        raise Conflict("sitter.already_named", "You have already named this sitter.", fields={"email": "is already one of your sitters"})
    if len(active) >= MAX_ACTIVE_SITTERS:
        raise InvalidInput(
            "sitter.too_many",
            f"You can name up to {MAX_ACTIVE_SITTERS} sitters. Remove one first.",
            fields={"email": "one sitter too many"},
        )
    await _count_invitation(session, patient=patient, to=email, actor=actor, now=now)
    sitter = Sitter(
        patient_id=patient.id,
        status=SitterStatus.INVITED,
        full_name=" ".join(full_name.split()),
        email=normalize_email(email),
        phone=phone.strip() or None,
        relationship=relationship.strip(),
        created_at=now,
        updated_at=now,
    )
    session.add(sitter)
    await session.flush()
    await record_audit_event(
        session, actor=actor, action="sitter.add", resource_type="sitter", resource_id=sitter.id, patient_id=patient.id, now=now
    )
    await _send_agreement_link(session, sitter, patient_full_name=patient_user.full_name, now=now, settings=settings)
    return sitter


async def resend_invitation(
    session: AsyncSession, *, patient: Patient, sitter_id: uuid.UUID, actor: Actor, now: datetime, settings: Settings
) -> Sitter:
    sitter = await own_sitter(session, patient=patient, sitter_id=sitter_id)
    if sitter.status != SitterStatus.INVITED:
        raise Conflict("sitter.not_invited", "Only a sitter who has not answered yet can be sent the agreement again.")
    await _count_invitation(session, patient=patient, to=sitter.email, actor=actor, now=now)
    await revoke_links(session, now=now, sitter_id=sitter.id)
    await _send_agreement_link(
        session, sitter, patient_full_name=(await patient_contact(session, patient.id)).full_name, now=now, settings=settings
    )
    return sitter


async def _sitter_leaves(session: AsyncSession, sitter: Sitter, target: SitterStatus, *, actor: Actor, now: datetime) -> None:
    """Decline, removal or withdrawal: every session they were to sit loses them (they get its cancellation,
    the patient is told, without detail), and their links stop working. The lock order of accounts/locks.py:
    the patient, then the sessions, and only then the links."""
    await lock_patient(session, sitter.patient_id)
    orphaned = list(
        (
            await session.execute(
                select(DosingSession)
                .where(DosingSession.sitter_id == sitter.id, DosingSession.status == SessionStatus.SCHEDULED)
                .order_by(col(DosingSession.scheduled_at))
                .with_for_update()
            )
        ).scalars()
    )
    await change_status(
        session,
        Sitter,
        sitter.id,
        table=SITTER_TRANSITIONS,
        source=sitter.status,
        target=target,
        actor=actor,
        now=now,
        patient_id=sitter.patient_id,
        values={"updated_at": now},
    )
    for row in orphaned:
        row.sitter_id, row.ics_sequence, row.updated_at = None, row.ics_sequence + 1, now
        await session.flush()
        await record_audit_event(
            session,
            actor=actor,
            action="dosing_session.sitter_left",
            resource_type="dosing_session",
            resource_id=row.id,
            patient_id=row.patient_id,
            now=now,
            reason=str(target),
        )
        await email_sitter(session, row, sitter, change="cancelled", now=now)
    # A session already under way keeps its end link: how it ended is still theirs to tell.
    under_way = select(DosingSession.id).where(col(DosingSession.status).in_([SessionStatus.UNLOCKED, SessionStatus.REPORTED]))
    await session.execute(
        update(SitterLink)
        .where(
            col(SitterLink.sitter_id) == sitter.id,
            col(SitterLink.used_at).is_(None),
            col(SitterLink.revoked_at).is_(None),
            ~((col(SitterLink.purpose) == LinkPurpose.END) & col(SitterLink.dosing_session_id).in_(under_way)),
        )
        .values(revoked_at=now)
    )
    if orphaned or target in (SitterStatus.DECLINED, SitterStatus.WITHDRAWN):
        contact = await patient_contact(session, sitter.patient_id)
        await queue_email(
            session,
            to=contact.email,
            template="portal_update",
            context={"recipient_name": contact.full_name},
            now=now,
            dedupe_key=f"sitter_left:{sitter.id}",
        )
    await session.refresh(sitter)


async def remove_sitter(
    session: AsyncSession, *, patient: Patient, sitter_id: uuid.UUID, actor: Actor, now: datetime, settings: Settings
) -> Sitter:
    sitter = await own_sitter(session, patient=patient, sitter_id=sitter_id)
    if sitter.status not in ACTIVE_SITTER:
        raise Conflict("sitter.already_gone", "This sitter has already declined or been removed.")
    await _sitter_leaves(session, sitter, SitterStatus.REMOVED, actor=actor, now=now)
    return sitter


async def sign_agreement(
    session: AsyncSession, *, token: str, typed_name: str, adult: bool, agreed: bool, actor: Actor, now: datetime
) -> Sitter:
    """The sitter confirms they are an adult who is not the patient, and signs the agreement by typing their name."""
    opened = await open_link(session, token=token, purpose=LinkPurpose.AGREEMENT, actor=actor, now=now)
    sitter = opened.sitter
    problems = {}
    if not adult:
        problems["adult"] = "you must be 18 or older to be a sitter"
    if not agreed:
        problems["agreed"] = "read and accept the agreement to go on"
    if not same_name(typed_name, sitter.full_name):
        problems["typed_name"] = f"type your full name as the patient gave it: {sitter.full_name}"
    elif same_name(typed_name, (await patient_contact(session, sitter.patient_id)).full_name):
        problems["typed_name"] = "the patient cannot be their own sitter"
    if problems:
        raise InvalidInput("request.invalid", "The agreement is not signed yet.", fields=problems)
    await spend_link(session, token=token, purpose=LinkPurpose.AGREEMENT, actor=actor, now=now)
    await change_status(
        session,
        Sitter,
        sitter.id,
        table=SITTER_TRANSITIONS,
        source=SitterStatus.INVITED,
        target=SitterStatus.CONFIRMED,
        actor=actor,
        now=now,
        patient_id=sitter.patient_id,
        values={
            "adult_confirmed": True,
            "agreement_version": SITTER_AGREEMENT.version,
            "agreement_sha256": SITTER_AGREEMENT.sha256,
            "typed_name": " ".join(typed_name.split()),
            "signed_at": now,
            "signed_ip": actor.ip,
            "signed_user_agent": (actor.user_agent or "")[:400] or None,
            "updated_at": now,
        },
    )
    contact = await patient_contact(session, sitter.patient_id)
    await queue_email(
        session,
        to=contact.email,
        template="portal_update",
        context={"recipient_name": contact.full_name},
        now=now,
        dedupe_key=f"sitter_confirmed:{sitter.id}",
    )
    await session.refresh(sitter)
    return sitter


async def decline(session: AsyncSession, *, token: str, actor: Actor, now: datetime, settings: Settings) -> Sitter:
    opened = await open_link(session, token=token, purpose=LinkPurpose.AGREEMENT, actor=actor, now=now)
    await lock_patient(session, opened.sitter.patient_id)  # before spending: links come after the patient
    await spend_link(session, token=token, purpose=LinkPurpose.AGREEMENT, actor=actor, now=now)
    await _sitter_leaves(session, opened.sitter, SitterStatus.DECLINED, actor=actor, now=now)
    return opened.sitter


async def withdraw(session: AsyncSession, *, token: str, actor: Actor, now: datetime) -> Sitter:
    """The sitter steps down altogether, from any live link of theirs (each only takes something away here,
    and the token is the sitter's key): every future session they sit for loses them and its links, and the
    patient is told at once. Before signing, declining the agreement is the way (409 here)."""
    opened = await open_link(session, token=token, purpose=None, actor=actor, now=now)
    if opened.sitter.status != SitterStatus.CONFIRMED:
        raise Conflict("sitter.not_confirmed", "You have not agreed to be a sitter: decline the agreement instead.")
    await _sitter_leaves(session, opened.sitter, SitterStatus.WITHDRAWN, actor=actor, now=now)
    return opened.sitter
