"""Writing, sealing and verifying the audit trail.

Writers only INSERT (no lock: requests never wait on each other to audit). A sealer, one at a time under
an advisory lock, gives committed events a `chain_seq` in order and an HMAC-SHA256, under a key the
database never holds (audit/keys.py), of their content plus the previous event's hash. Editing or deleting
a sealed event breaks the chain, and the database refuses both anyway (a trigger allows only the one-time
sealing UPDATE; the service's runtime role may not disable it). Without the key nobody can recompute a
chain that verifies; anchors outside the database (audit/anchors.py) catch a cut tail. Events wait seconds
for their seal (the worker seals every few seconds; `verify-audit` seals what is pending first).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.audit.anchors import AnchorFile, append_anchor, last_anchored_seq
from telehealth.audit.keys import LEGACY_KEY_ID, AuditKeys
from telehealth.audit.models import AuditEvent
from telehealth.db import driver
from telehealth.db.status_swap import swap_status
from telehealth.lib.actors import Actor
from telehealth.lib.states import TransitionTable

logger = logging.getLogger("telehealth.audit")

AUDIT_SEAL_LOCK_KEY = 7_461_002
GENESIS_HASH = "0" * 64


def _field(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()  # the database hands times back in UTC
    return str(value).replace("|", "/")


def compute_row_hash(event: AuditEvent, *, chain_seq: int, prev_hash: str, key: bytes | None) -> str:
    """HMAC-SHA256 under `key`; plain SHA-256 (key None) only for events sealed before keyed hashing."""
    parts = (
        chain_seq,
        event.id,
        event.occurred_at,
        event.actor_user_id,
        event.actor_role,
        event.action,
        event.resource_type,
        event.resource_id,
        event.patient_id,
        event.ip,
        event.user_agent,
        event.outcome,
        event.reason,
        prev_hash,
    )
    message = "|".join(_field(part) for part in parts).encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# Every audited change runs it (bookings, joins, Stripe events): on the driver (db/driver.py), no ORM object or flush of its own.
_INSERT_EVENT = """
INSERT INTO audit_event (occurred_at, actor_user_id, actor_role, action, resource_type, resource_id, patient_id, ip, user_agent, outcome,
                         reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""


async def record_audit_event(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    resource_type: str,
    now: datetime,
    resource_id: object | None = None,
    patient_id: uuid.UUID | None = None,
    outcome: str = "success",
    reason: str | None = None,
) -> None:
    """Append one event in the caller's transaction (it commits or rolls back with the change it records)."""
    # The caller's pending ORM changes go first, as when the event was an ORM object flushed with them.
    if now.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; attach a time zone first")  # as UTCDateTime refuses it
    await driver.execute(
        session,
        _INSERT_EVENT,
        now.astimezone(UTC),
        actor.user_id,
        str(actor.role),
        action,
        resource_type,
        None if resource_id is None else str(resource_id),
        patient_id,
        actor.ip,
        (actor.user_agent or "")[:400] or None,
        outcome,
        reason,
    )


async def change_status(
    session: AsyncSession,
    model: type[Any],
    row_id: uuid.UUID,
    *,
    table: TransitionTable,
    source: str,
    target: str,
    actor: Actor,
    now: datetime,
    patient_id: uuid.UUID | None = None,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Move one row from `source` to `target` if it is still in `source` (lib/states.py), and audit it as
    `<table>.<action>` in the same transaction.

    Raises Conflict when the transition is not in the table or another writer moved the row first.
    """
    action = await swap_status(session, model, row_id, table=table, source=source, target=target, values=values)
    await record_audit_event(
        session,
        actor=actor,
        action=f"{table.name}.{action}",
        resource_type=table.name,
        resource_id=row_id,
        patient_id=patient_id,
        now=now,
    )


async def seal_audit_chain(session: AsyncSession, keys: AuditKeys, *, batch_size: int = 2000) -> int:
    """Seal committed, unsealed events onto the end of the chain with the current key; answer how many."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_SEAL_LOCK_KEY})
    last = (
        await session.execute(
            select(AuditEvent.chain_seq, AuditEvent.row_hash)
            .where(col(AuditEvent.chain_seq).is_not(None))
            .order_by(col(AuditEvent.chain_seq).desc())
            .limit(1)
        )
    ).first()
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    pending = (
        (
            await session.execute(
                select(AuditEvent).where(col(AuditEvent.chain_seq).is_(None)).order_by(col(AuditEvent.id)).limit(batch_size)
            )
        )
        .scalars()
        .all()
    )
    for event in pending:
        seq += 1
        row_hash = compute_row_hash(event, chain_seq=seq, prev_hash=prev_hash, key=keys.current)
        await session.execute(
            update(AuditEvent)
            .where(col(AuditEvent.id) == event.id, col(AuditEvent.chain_seq).is_(None))
            .values(chain_seq=seq, prev_hash=prev_hash, row_hash=row_hash, key_id=keys.current_id)
            .execution_options(synchronize_session=False)
        )
        prev_hash = row_hash
    return len(pending)


@dataclass(frozen=True)
class ChainReport:
    rows_checked: int
    first_broken_seq: int | None
    problem: str | None
    awaiting_seal: int = 0
    legacy_rows: int = 0  # sealed before keyed hashing: plain SHA-256, the chain's first stretch only
    anchors_checked: int = 0
    unreadable_anchor_lines: tuple[int, ...] = ()
    head: tuple[int, str, str | None] | None = None  # (chain_seq, row_hash, key_id) of the last event checked

    @property
    def intact(self) -> bool:
        return self.first_broken_seq is None


def _key_for(event: AuditEvent, keys: AuditKeys, *, keyed_seen: bool) -> tuple[bytes | None, str | None]:
    """The key that sealed `event` (None: legacy SHA-256), or why it cannot be checked."""
    if event.key_id == LEGACY_KEY_ID:
        if keyed_seen:  # legacy hashes need no key: accepted after a keyed event, anyone could forge the rest
            return None, "it claims a plain SHA-256 hash (sealed before keyed hashing) after keyed events"
        return None, None
    if event.key_id in keys.by_id:
        return keys.by_id[event.key_id], None
    return None, f"it was sealed with key {event.key_id}, which is neither AUDIT_HMAC_KEY nor in AUDIT_HMAC_OLD_KEYS"


async def verify_audit_chain(
    session: AsyncSession, keys: AuditKeys, *, anchors: AnchorFile | None = None, batch_size: int = 5000
) -> ChainReport:
    """Walk the sealed chain in order; report the first event whose place, link, key, content or anchor is
    wrong, or the first anchor past the chain's end (events cut from the end)."""
    awaiting = await session.scalar(select(func.count()).select_from(AuditEvent).where(col(AuditEvent.chain_seq).is_(None))) or 0
    anchored: dict[int, list] = {}
    for anchor in anchors.anchors if anchors else ():
        anchored.setdefault(anchor.chain_seq, []).append(anchor)
    unreadable = anchors.unreadable_lines if anchors else ()
    expected_prev, expected_seq, checked, legacy, anchors_checked = GENESIS_HASH, 1, 0, 0, 0
    head: tuple[int, str, str | None] | None = None

    def broken(seq: int, problem: str) -> ChainReport:
        return ChainReport(checked, seq, problem, awaiting, legacy, anchors_checked, unreadable, head)

    while True:
        rows = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(col(AuditEvent.chain_seq) >= expected_seq)
                    .order_by(col(AuditEvent.chain_seq))
                    .limit(batch_size)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for event in rows:
            checked += 1
            if event.chain_seq != expected_seq:
                return broken(expected_seq, f"event {expected_seq} of the chain is missing")
            if event.prev_hash != expected_prev:
                return broken(expected_seq, "its prev_hash does not match the event before it")
            key, refusal = _key_for(event, keys, keyed_seen=checked > legacy + 1)
            if refusal:
                return broken(expected_seq, refusal)
            legacy += key is None
            if compute_row_hash(event, chain_seq=expected_seq, prev_hash=expected_prev, key=key) != event.row_hash:
                return broken(expected_seq, "its content does not match its row_hash")
            for anchor in anchored.get(expected_seq, ()):
                anchors_checked += 1
                if anchor.row_hash != event.row_hash:
                    return broken(
                        expected_seq,
                        f"its row_hash differs from the one anchored outside the database at {anchor.anchored_at} "
                        f"(anchor line {anchor.line})",
                    )
            head = (expected_seq, event.row_hash or "", event.key_id)
            expected_prev, expected_seq = event.row_hash or "", expected_seq + 1
        session.expunge_all()
    beyond = [anchor for seq, found in anchored.items() if seq >= expected_seq for anchor in found]
    if beyond:
        last = max(beyond, key=lambda anchor: anchor.chain_seq)
        return broken(
            expected_seq,
            f"the chain ends at event {expected_seq - 1} but event {last.chain_seq} was anchored outside the database at "
            f"{last.anchored_at} (anchor line {last.line}): events were removed from its end",
        )
    return ChainReport(checked, None, None, awaiting, legacy, anchors_checked, unreadable, head)


async def anchor_chain_head(session: AsyncSession, keys: AuditKeys, path: Path, *, now: datetime) -> int | None:
    """Append the chain's head to the anchor file when it moved since the last anchor and its hash is one
    this service's keys made (a forged head is left for verify-audit to report, never anchored). Answers
    the chain_seq anchored, if any."""
    head = (
        await session.execute(
            select(AuditEvent).where(col(AuditEvent.chain_seq).is_not(None)).order_by(col(AuditEvent.chain_seq).desc()).limit(1)
        )
    ).scalar_one_or_none()
    if head is None or head.chain_seq is None or head.chain_seq <= last_anchored_seq(path):
        return None
    key = keys.by_id.get(head.key_id or "")
    if key is None or compute_row_hash(head, chain_seq=head.chain_seq, prev_hash=head.prev_hash or "", key=key) != head.row_hash:
        logger.warning("audit chain head %s does not verify with this service's keys; not anchored (run verify-audit)", head.chain_seq)
        return None
    append_anchor(path, chain_seq=head.chain_seq, row_hash=head.row_hash or "", key_id=head.key_id, now=now)
    return head.chain_seq
