"""Waiting-list rules: joining (double opt-in, silent duplicates), the emailed status link, position and
estimate, leaving with erasure, rejoining, and the coordinator's view of every state's queue.

Invitations (invite the next N, expiry, acceptance) are in `invitations.py`.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, func, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.security import hash_token, new_token
from telehealth.accounts.service import email_problem, normalize_email
from telehealth.audit.service import change_status, record_audit_event
from telehealth.clinicians.service import is_state_served, served_states
from telehealth.db import driver
from telehealth.lib.actors import Actor
from telehealth.lib.dates import age_on
from telehealth.lib.errors import InvalidInput, NotFound, TooManyRequests
from telehealth.lib.us_states import US_STATES
from telehealth.lib.validation import E164_PHONE, has_control_characters
from telehealth.notifications.service import queue_email
from telehealth.settings import Settings
from telehealth.system.rate_limit import over_rate_limit
from telehealth.waitlist.models import TALLY_BUCKET_ORIGIN, TALLY_BUCKET_WIDTH, WaitlistEntry, WaitlistInvitation, WaitlistLink
from telehealth.waitlist.states import ENTRY_TRANSITIONS, EntryStatus, InvitationStatus

CONDITIONS_OF_INTEREST = {
    "depression": "Depression",
    "anxiety": "Anxiety",
    "ptsd": "PTSD",
    "ocd": "OCD",
    "other": "Something else",
}
ESTIMATE_WINDOW = timedelta(days=28)  # the recent invitation rate behind the wait estimate
LINK_INVALID = "This waiting-list link is not valid (it may be mistyped, or you have left the list)."


@dataclass(frozen=True)
class JoinRequest:
    first_name: str
    last_name: str
    email: str
    state: str
    date_of_birth: date
    consent_to_contact: bool
    phone: str | None = None
    conditions: tuple[str, ...] = ()


def join_problems(request: JoinRequest, *, today: date) -> dict[str, str]:
    """Every field that is not acceptable, with the reason."""
    problems: dict[str, str] = {}
    for field in ("first_name", "last_name"):
        value = getattr(request, field).strip()
        if not value:
            problems[field] = "is required"
        elif len(value) > 99:  # first and last together fit the account's 200-character name
            problems[field] = "must be at most 99 characters"
        elif has_control_characters(value):
            problems[field] = "contains characters that are not allowed"
    if problem := email_problem(request.email):
        problems["email"] = problem
    if request.state.upper() not in US_STATES:
        problems["state"] = "must be a US state or DC, as two letters (e.g. NY)"
    if request.date_of_birth > today:
        problems["date_of_birth"] = "is in the future"
    elif age_on(request.date_of_birth, today) < 18:
        problems["date_of_birth"] = "must be at least 18 years ago: the program is for adults"
    elif age_on(request.date_of_birth, today) > 120:
        problems["date_of_birth"] = "is not plausible"
    if request.phone and not E164_PHONE.match(request.phone):
        problems["phone"] = "must be in international format, e.g. +12125550123"
    if unknown := [c for c in request.conditions if c not in CONDITIONS_OF_INTEREST]:
        problems["conditions"] = f"has unknown choices: {', '.join(sorted(unknown))[:100]}"
    if not request.consent_to_contact:
        problems["consent_to_contact"] = "must be given so we can email you about your place"
    return problems


# The join and the position lookup run on the driver (db/driver.py): SQL text, records, no ORM objects. Every
# join runs the entry's INSERT, the link's and (through the audit and the outbox) two more; every lookup four reads.
_INSERT_LINK = "INSERT INTO waitlist_link (token_hash, entry_id, created_at) VALUES ($1, $2, $3)"


async def _issue_link(session: AsyncSession, *, entry_id: uuid.UUID, now: datetime, settings: Settings) -> str:
    raw, digest = new_token()
    await driver.execute(session, _INSERT_LINK, digest, entry_id, driver.utc(now))
    return f"{settings.public_base_url}/waitlist/entry?token={raw}"


class Addressee(Protocol):
    """An entry as the status-link email needs it (a WaitlistEntry, or the join's record)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def email(self) -> str | None: ...
    @property
    def first_name(self) -> str | None: ...


async def email_status_link(session: AsyncSession, *, entry: Addressee, template: str, now: datetime, settings: Settings) -> None:
    """Email a fresh private link to the entry's page (confirmation, already joined, invitation ended)."""
    assert entry.email and entry.first_name
    link_url = await _issue_link(session, entry_id=entry.id, now=now, settings=settings)
    await queue_email(
        session,
        to=entry.email,
        template=template,
        context={"recipient_name": entry.first_name, "link_url": link_url},
        now=now,
        dedupe_key=f"waitlist:{template}:{entry.id}",
    )


_INSERT_ENTRY = """
INSERT INTO waitlist_entry
    (id, status, state, first_name, last_name, email, date_of_birth, phone, conditions, consent_to_contact, joined_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (email) WHERE email IS NOT NULL DO NOTHING
RETURNING id, status, email, first_name
"""
_JOINER_BY_EMAIL = "SELECT id, status, email, first_name FROM waitlist_entry WHERE email = $1"


@dataclass(frozen=True)
class _Joiner:
    """The entry a join made or found: what its audit row and its email need."""

    id: uuid.UUID
    status: str
    email: str | None
    first_name: str | None


async def _joiner_by_email(session: AsyncSession, email: str) -> _Joiner | None:
    row = await driver.fetchrow(session, _JOINER_BY_EMAIL, email)
    return None if row is None else _Joiner(*row)


async def join_waitlist(session: AsyncSession, request: JoinRequest, *, actor: Actor, now: datetime, settings: Settings) -> None:
    """Add a person (unconfirmed until they use the emailed link). A second join with the same email
    changes nothing and answers the same; the address's owner gets a fresh link by email instead."""
    if await over_rate_limit(
        session,
        bucket="waitlist_join",
        key=actor.ip or "unknown",
        limit=settings.waitlist_joins_per_ip_per_hour,
        window=timedelta(hours=1),
        now=now,
    ):
        raise TooManyRequests("waitlist.rate_limited", "Too many sign-ups from this network. Please try again in an hour.")
    if problems := join_problems(request, today=now.astimezone(settings.clinic_zone).date()):
        # keep_evidence: the attempt still counts toward the rate limit (bots send bad input too)
        raise InvalidInput("waitlist.invalid", "Some details need another look.", fields=problems, keep_evidence=True)
    email = normalize_email(request.email)
    new = await driver.fetchrow(
        session,
        _INSERT_ENTRY,
        uuid.uuid4(),
        EntryStatus.UNCONFIRMED.value,
        request.state.upper(),
        request.first_name.strip(),
        request.last_name.strip(),
        email,
        request.date_of_birth,
        request.phone or None,
        list(dict.fromkeys(request.conditions)) or None,
        True,
        driver.utc(now),
    )
    entry = _Joiner(*new) if new is not None else await _joiner_by_email(session, email)
    if entry is None:  # the other entry was erased between our insert and our read: join afresh
        return await join_waitlist(session, request, actor=actor, now=now, settings=settings)
    await record_audit_event(
        session,
        actor=actor,
        action="waitlist_entry.join" if new is not None else "waitlist_entry.join_again",
        resource_type="waitlist_entry",
        resource_id=entry.id,
        now=now,
    )
    if new is not None:
        await email_status_link(session, entry=entry, template="waitlist_confirm", now=now, settings=settings)
        return
    # Already on the list: tell the owner (at most a few times a day), never the person asking.
    if not await over_rate_limit(session, bucket="waitlist_reminder", key=str(entry.id), limit=3, window=timedelta(days=1), now=now):
        template = "waitlist_confirm" if entry.status == EntryStatus.UNCONFIRMED else "waitlist_already_joined"
        await email_status_link(session, entry=entry, template=template, now=now, settings=settings)


async def entry_for_link(session: AsyncSession, token: str, *, for_update: bool = False) -> WaitlistEntry:
    statement = (
        select(WaitlistEntry)
        .join(WaitlistLink, col(WaitlistLink.entry_id) == WaitlistEntry.id)
        .where(WaitlistLink.token_hash == hash_token(token))
    )
    entry = (await session.execute(statement.with_for_update(of=WaitlistEntry) if for_update else statement)).scalar_one_or_none()
    if entry is None:
        raise NotFound("waitlist.link_invalid", LINK_INVALID)
    return entry


async def confirm_place(session: AsyncSession, *, token: str, actor: Actor, now: datetime) -> WaitlistEntry:
    """Double opt-in: the place counts from now. Using the link again changes nothing."""
    entry = await entry_for_link(session, token, for_update=True)
    if entry.status == EntryStatus.UNCONFIRMED:
        await change_status(
            session,
            WaitlistEntry,
            entry.id,
            table=ENTRY_TRANSITIONS,
            source=EntryStatus.UNCONFIRMED,
            target=EntryStatus.WAITING,
            actor=actor,
            now=now,
            values={"confirmed_at": now},
        )
        await session.refresh(entry)
    return entry


async def rejoin(session: AsyncSession, *, token: str, actor: Actor, now: datetime) -> WaitlistEntry:
    """After an invitation lapsed: back in the queue, counted from now."""
    entry = await entry_for_link(session, token, for_update=True)
    await change_status(
        session,
        WaitlistEntry,
        entry.id,
        table=ENTRY_TRANSITIONS,
        source=entry.status,
        target=EntryStatus.WAITING,
        actor=actor,
        now=now,
        values={"confirmed_at": now, "note": None},
    )
    await session.refresh(entry)
    return entry


async def leave_waitlist(session: AsyncSession, *, token: str, actor: Actor, now: datetime, settings: Settings) -> None:
    """Leave and erase: every personal field goes, the row stays (state and status) so counts stay right.
    A live invitation is revoked (its place goes to the next person), every private link dies, and mail
    still queued to the address is dropped."""
    from telehealth.waitlist.invitations import lock_live_invitation, revoke_invitation

    found = await entry_for_link(session, token)
    live_invitation = await lock_live_invitation(session, entry_id=found.id)  # invitation first, then entry
    entry = await session.get(WaitlistEntry, found.id, with_for_update=True, populate_existing=True)
    assert entry is not None
    if entry.status == EntryStatus.ENROLLED:
        raise InvalidInput(
            "waitlist.already_enrolled",
            "You already have an account; your records are kept in your portal.",
            fields={"token": "belongs to someone who already enrolled"},
        )
    email = entry.email
    await change_status(
        session,
        WaitlistEntry,
        entry.id,
        table=ENTRY_TRANSITIONS,
        source=entry.status,
        target=EntryStatus.LEFT,
        actor=actor,
        now=now,
        values={
            "first_name": None,
            "last_name": None,
            "email": None,
            "date_of_birth": None,
            "phone": None,
            "conditions": None,
            "left_at": now,
            "note": None,
        },
    )
    if live_invitation is not None:
        await revoke_invitation(session, invitation=live_invitation, actor=actor, now=now, settings=settings)
    await session.execute(delete(WaitlistLink).where(col(WaitlistLink.entry_id) == entry.id))
    if email:
        await session.execute(
            text("DELETE FROM job WHERE status = 'queued' AND kind = 'notifications.send_email' AND payload->>'to' = :to"),
            {"to": email},
        )


class QueuedEntry(Protocol):
    """An entry as its place in the queue needs it (a WaitlistEntry, or the lookup's EntryAtLink)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def confirmed_at(self) -> datetime | None: ...
    @property
    def note(self) -> str | None: ...


@dataclass(frozen=True)
class EntryAtLink:
    """The columns of the entry a private link leads to that its status answer shows."""

    id: uuid.UUID
    status: str
    state: str
    confirmed_at: datetime | None
    note: str | None


_ENTRY_AT_LINK = """
SELECT waitlist_entry.id, waitlist_entry.status, waitlist_entry.state, waitlist_entry.confirmed_at, waitlist_entry.note
FROM waitlist_entry JOIN waitlist_link ON waitlist_link.entry_id = waitlist_entry.id
WHERE waitlist_link.token_hash = $1
"""


async def entry_at_link(session: AsyncSession, token: str) -> EntryAtLink:
    """The entry of an emailed link, to read (entry_for_link gives the ORM object the writers change)."""
    row = await driver.fetchrow(session, _ENTRY_AT_LINK, hash_token(token))
    if row is None:
        raise NotFound("waitlist.link_invalid", LINK_INVALID)
    confirmed_at = row["confirmed_at"]
    return EntryAtLink(row["id"], row["status"], row["state"], None if confirmed_at is None else confirmed_at.astimezone(UTC), row["note"])


@dataclass(frozen=True)
class PlaceInQueue:
    entry: QueuedEntry
    state_served: bool
    position: int | None
    people_waiting: int
    estimated_wait_weeks: int | None
    invitation_expires_at: datetime | None


# The day (UTC) a waiting entry is counted in by waitlist_tally: models.tally_bucket's expression, as the triggers
# of migration 0016 write it. date_bin is immutable, so a plan folds it for a parameter.
_DAY_OF = f"date_bin(INTERVAL '{TALLY_BUCKET_WIDTH}', $2::timestamptz, TIMESTAMPTZ '{TALLY_BUCKET_ORIGIN}')"
# One statement (one snapshot): the people waiting in the entry's state ($1), and those ahead of it: the tally of
# the earlier days plus a count over the queue index inside the entry's own day. The status is literal, so even a
# cached generic plan uses the partial index ix_waitlist_entry_queue.
_PEOPLE_WAITING_AND_AHEAD = f"""
SELECT coalesce(sum(waitlist_tally.waiting), 0) AS people_waiting,
       coalesce(sum(waitlist_tally.waiting) FILTER (WHERE waitlist_tally.bucket_start < {_DAY_OF}), 0)
       + (SELECT count(*) FROM waitlist_entry
          WHERE waitlist_entry.state = $1 AND waitlist_entry.status = 'waiting' AND waitlist_entry.confirmed_at >= {_DAY_OF}
            AND (waitlist_entry.confirmed_at, waitlist_entry.id) < ($2::timestamptz, $3::uuid)) AS ahead
FROM waitlist_tally WHERE waitlist_tally.state = $1
"""
_PEOPLE_WAITING = "SELECT coalesce(sum(waiting), 0) FROM waitlist_tally WHERE state = $1"
_RECENT_INVITATIONS = "SELECT count(*) FROM waitlist_invitation WHERE state = $1 AND created_at >= $2"
_LIVE_INVITATION_EXPIRES_AT = "SELECT expires_at FROM waitlist_invitation WHERE entry_id = $1 AND status = 'sent'"


async def place_in_queue(session: AsyncSession, entry: QueuedEntry, *, now: datetime, settings: Settings) -> PlaceInQueue:
    """Where the person stands in their state's queue, and a wait estimate from the recent invitation rate.
    Read from waitlist_tally (kept by the database), so it costs the same however long the queue is."""
    position = None
    if entry.status == EntryStatus.WAITING:
        assert entry.confirmed_at is not None  # a waiting entry has confirmed (the queue order)
        row = await driver.fetchrow(session, _PEOPLE_WAITING_AND_AHEAD, entry.state, driver.utc(entry.confirmed_at), entry.id)
        assert row is not None  # aggregates: always one row
        people_waiting, position = row["people_waiting"], row["ahead"] + 1
    else:
        people_waiting = await driver.fetchval(session, _PEOPLE_WAITING, entry.state)
    estimate = None
    if position is not None:
        recent = await driver.fetchval(session, _RECENT_INVITATIONS, entry.state, driver.utc(now - ESTIMATE_WINDOW))
        per_week = (recent or 0) / (ESTIMATE_WINDOW.days / 7)
        estimate = math.ceil(position / per_week) if per_week else None
    expires_at = None
    if entry.status == EntryStatus.INVITED:
        expires_at = await driver.fetchval(session, _LIVE_INVITATION_EXPIRES_AT, entry.id)
        expires_at = None if expires_at is None else expires_at.astimezone(UTC)
    served = await is_state_served(session, state=entry.state, on=now.astimezone(settings.clinic_zone).date())
    return PlaceInQueue(entry, served, position, people_waiting, estimate, expires_at)


@dataclass(frozen=True)
class StateQueueCounts:
    state: str
    served: bool
    counts: dict[str, int]
    invitations_out: int
    oldest_waiting_since: datetime | None

    @property
    def may_invite(self) -> bool:
        """Invitations go only to states the clinic serves (invite_next refuses the others), and to people waiting."""
        return self.served and self.counts.get(EntryStatus.WAITING, 0) > 0


async def queues_by_state(session: AsyncSession, *, now: datetime, settings: Settings) -> list[StateQueueCounts]:
    """The coordinator's overview: every state with anyone on the list, or served."""
    counts: dict[str, dict[str, int]] = {}
    for state, status, count in (
        await session.execute(
            select(WaitlistEntry.state, WaitlistEntry.status, func.count()).group_by(WaitlistEntry.state, WaitlistEntry.status)
        )
    ).all():
        counts.setdefault(state, {})[status] = count
    oldest = dict(
        (
            await session.execute(
                select(WaitlistEntry.state, func.min(WaitlistEntry.confirmed_at))
                .where(WaitlistEntry.status == EntryStatus.WAITING)
                .group_by(WaitlistEntry.state)
            )
        ).all()
    )
    out = dict(
        (
            await session.execute(
                select(WaitlistInvitation.state, func.count())
                .where(WaitlistInvitation.status == InvitationStatus.SENT)
                .group_by(WaitlistInvitation.state)
            )
        ).all()
    )
    served = await served_states(session, on=now.astimezone(settings.clinic_zone).date())
    return [
        StateQueueCounts(state, state in served, counts.get(state, {}), out.get(state, 0), oldest.get(state))
        for state in sorted(set(counts) | served)
    ]
