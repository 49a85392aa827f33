"""Invitations: the coordinator invites the next N of a state; an invitation expires after the configured
days and passes to the next person; the invited person creates their patient account with it.

Two invitation runs at once never invite one person twice: each run locks the rows it takes with
`FOR UPDATE SKIP LOCKED`, and a partial unique index allows one live invitation per person.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.security import hash_token, new_token
from telehealth.accounts.service import create_account
from telehealth.audit.service import change_status, record_audit_event
from telehealth.clinicians.service import is_state_served
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput
from telehealth.lib.us_states import US_STATES
from telehealth.notifications.service import queue_email
from telehealth.settings import Settings
from telehealth.waitlist.models import IS_LIVE_INVITATION, IS_WAITING, WaitlistEntry, WaitlistInvitation
from telehealth.waitlist.service import email_status_link
from telehealth.waitlist.states import ENTRY_TRANSITIONS, INVITATION_TRANSITIONS, EntryStatus, InvitationStatus

TERMS_VERSION = "terms-2026-11"
INVITATION_INVALID = "This invitation has expired or was already used. Your waiting-list link shows what to do next."


async def invite_next(session: AsyncSession, *, state: str, count: int, actor: Actor, now: datetime, settings: Settings) -> list[uuid.UUID]:
    """Invite the next `count` people waiting in `state`, in queue order; answer the invitation ids."""
    state = state.upper()
    if state not in US_STATES:
        raise InvalidInput("waitlist.invalid", "Choose a US state.", fields={"state": "must be a US state or DC"})
    if not 1 <= count <= 500:
        raise InvalidInput("waitlist.invalid", "Invite between 1 and 500 people at a time.", fields={"count": "must be 1 to 500"})
    if not await is_state_served(session, state=state, on=now.astimezone(settings.clinic_zone).date()):
        raise InvalidInput(
            "waitlist.state_not_served",
            f"No prescriber can see patients in {US_STATES[state]} yet, so nobody there can be invited.",
            fields={"state": "is not served yet"},
        )
    entries = (
        (
            await session.execute(
                select(WaitlistEntry)
                .where(WaitlistEntry.state == state, IS_WAITING)
                .order_by(col(WaitlistEntry.confirmed_at), col(WaitlistEntry.id))
                .limit(count)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    expires_at = now + timedelta(days=settings.thresholds.invitation_valid_days)
    invitation_ids = []
    for entry in entries:
        await change_status(
            session,
            WaitlistEntry,
            entry.id,
            table=ENTRY_TRANSITIONS,
            source=EntryStatus.WAITING,
            target=EntryStatus.INVITED,
            actor=actor,
            now=now,
        )
        raw, digest = new_token()
        invitation = WaitlistInvitation(
            entry_id=entry.id,
            state=state,
            invited_by_user_id=actor.user_id,
            token_hash=digest,
            created_at=now,
            expires_at=expires_at,
        )
        session.add(invitation)
        await session.flush()
        await record_audit_event(
            session,
            actor=actor,
            action="waitlist_invitation.send",
            resource_type="waitlist_invitation",
            resource_id=invitation.id,
            now=now,
        )
        assert entry.email and entry.first_name  # only erased entries lack them, and those have left
        await queue_email(
            session,
            to=entry.email,
            template="waitlist_invitation",
            context={
                "recipient_name": entry.first_name,
                "accept_url": f"{settings.public_base_url}/invitations/accept?token={raw}",
                "expires_on": expires_at.astimezone(settings.clinic_zone).strftime("%A %d %B %Y"),
            },
            now=now,
        )
        invitation_ids.append(invitation.id)
    return invitation_ids


async def lock_live_invitation(session: AsyncSession, *, entry_id: uuid.UUID) -> WaitlistInvitation | None:
    """Lock an entry's live invitation. Locks are always taken invitation first, then entry (as the
    expiry sweep and acceptance do), so a leave racing them waits instead of deadlocking."""
    return await session.scalar(
        select(WaitlistInvitation)
        .where(WaitlistInvitation.entry_id == entry_id, WaitlistInvitation.status == InvitationStatus.SENT)
        .with_for_update()
    )


async def revoke_invitation(
    session: AsyncSession, *, invitation: WaitlistInvitation, actor: Actor, now: datetime, settings: Settings
) -> None:
    """Withdraw a live invitation (its holder left the list); the place goes to the next person."""
    await change_status(
        session,
        WaitlistInvitation,
        invitation.id,
        table=INVITATION_TRANSITIONS,
        source=InvitationStatus.SENT,
        target=InvitationStatus.REVOKED,
        actor=actor,
        now=now,
        values={"token_hash": None},
    )
    await invite_in_place_of(session, state=invitation.state, actor=Actor.system(), now=now, settings=settings)


async def expire_due_invitations(session: AsyncSession, *, now: datetime, settings: Settings, limit: int = 200) -> int:
    """Expire invitations past their time; each expired person keeps a note and the next person in the
    same state is invited in their place. Answers how many expired."""
    system = Actor.system()
    due = (
        (
            await session.execute(
                select(WaitlistInvitation)
                .where(IS_LIVE_INVITATION, WaitlistInvitation.expires_at <= now)
                .order_by(col(WaitlistInvitation.expires_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    # State by state: each next person invited takes the lock of their state's oldest waitlist_tally day
    # until commit, so two sweeps at once take those locks in one order and never deadlock on them.
    for invitation in sorted(due, key=lambda invitation: (invitation.state, invitation.expires_at)):
        await change_status(
            session,
            WaitlistInvitation,
            invitation.id,
            table=INVITATION_TRANSITIONS,
            source=InvitationStatus.SENT,
            target=InvitationStatus.EXPIRED,
            actor=system,
            now=now,
            values={"token_hash": None},
        )
        entry = await session.get(WaitlistEntry, invitation.entry_id, with_for_update=True)
        assert entry is not None
        if entry.status == EntryStatus.INVITED:
            expired_on = invitation.expires_at.astimezone(settings.clinic_zone).strftime("%d %B %Y")
            await change_status(
                session,
                WaitlistEntry,
                entry.id,
                table=ENTRY_TRANSITIONS,
                source=EntryStatus.INVITED,
                target=EntryStatus.LAPSED,
                actor=system,
                now=now,
                values={"note": f"Invitation expired unused on {expired_on}; rejoin to be invited again."},
            )
            await session.refresh(entry)
            await email_status_link(session, entry=entry, template="waitlist_invitation_expired", now=now, settings=settings)
        await invite_in_place_of(session, state=invitation.state, actor=system, now=now, settings=settings)
    return len(due)


async def invite_in_place_of(session: AsyncSession, *, state: str, actor: Actor, now: datetime, settings: Settings) -> None:
    """A place freed by an expired or withdrawn invitation goes to the next person, if the state is still served."""
    if await is_state_served(session, state=state, on=now.astimezone(settings.clinic_zone).date()):
        await invite_next(session, state=state, count=1, actor=actor, now=now, settings=settings)


async def accept_invitation(
    session: AsyncSession, *, token: str, password: str, accept_terms: bool, actor: Actor, now: datetime, settings: Settings
) -> UserAccount:
    """Create the patient account from a live invitation (the email is verified: the link came by email)."""
    invitation = (
        await session.execute(
            select(WaitlistInvitation)
            .where(WaitlistInvitation.token_hash == hash_token(token), WaitlistInvitation.status == InvitationStatus.SENT)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if invitation is None or invitation.expires_at <= now:
        raise InvalidInput("invitation.link_invalid", INVITATION_INVALID, fields={"token": "is expired, used or unknown"})
    if not accept_terms:
        raise InvalidInput(
            "invitation.terms_required", "Please accept the terms to create your account.", fields={"accept_terms": "must be accepted"}
        )
    entry = await session.get(WaitlistEntry, invitation.entry_id, with_for_update=True)
    assert entry is not None and entry.email and entry.first_name and entry.last_name
    user = await create_account(
        session,
        email=entry.email,
        full_name=f"{entry.first_name} {entry.last_name}",
        role=Role.PATIENT,
        password=password,
        actor=actor,
        now=now,
        settings=settings,
        email_verified=True,
    )
    patient = (await session.execute(select(Patient).where(Patient.user_id == user.id))).scalar_one()
    patient.state_of_residence = entry.state
    patient_actor = Actor(user.id, Role.PATIENT.value, actor.ip, actor.user_agent)
    await change_status(
        session,
        WaitlistInvitation,
        invitation.id,
        table=INVITATION_TRANSITIONS,
        source=InvitationStatus.SENT,
        target=InvitationStatus.ACCEPTED,
        actor=patient_actor,
        now=now,
        patient_id=patient.id,
        values={"accepted_at": now, "token_hash": None},
    )
    await change_status(
        session,
        WaitlistEntry,
        entry.id,
        table=ENTRY_TRANSITIONS,
        source=EntryStatus.INVITED,
        target=EntryStatus.ENROLLED,
        actor=patient_actor,
        now=now,
        patient_id=patient.id,
        values={"patient_id": patient.id},
    )
    await record_audit_event(
        session,
        actor=patient_actor,
        action="account.accept_terms",
        resource_type="user_account",
        resource_id=user.id,
        patient_id=patient.id,
        reason=TERMS_VERSION,
        now=now,
    )
    return user


async def invitation_for_token(session: AsyncSession, token: str, *, now: datetime) -> WaitlistInvitation | None:
    """The live invitation behind a link, for showing the account form (None when it cannot be used)."""
    invitation = await session.scalar(
        select(WaitlistInvitation).where(
            WaitlistInvitation.token_hash == hash_token(token), WaitlistInvitation.status == InvitationStatus.SENT
        )
    )
    return invitation if invitation is not None and invitation.expires_at > now else None
