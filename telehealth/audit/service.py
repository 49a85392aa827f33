"""Writing, sealing and verifying the audit trail.

Writers only INSERT (no lock: requests never wait on each other to audit). A sealer, one at a time under
an advisory lock, gives committed events a `chain_seq` in order and the SHA-256 of their content plus the
previous event's hash. Editing or deleting a sealed event breaks the chain, and the database refuses both
anyway (a trigger allows only the one-time sealing UPDATE). Events wait seconds for their seal (the
worker seals every few seconds; `verify-audit` seals what is pending first).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.audit.models import AuditEvent

AUDIT_SEAL_LOCK_KEY = 7_461_002
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who is acting, and from where. Built once per request (or as `system` in the worker)."""

    user_id: uuid.UUID | None
    role: str
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role="system")

    @classmethod
    def anonymous(cls, ip: str | None = None, user_agent: str | None = None) -> Actor:
        return cls(user_id=None, role="anonymous", ip=ip, user_agent=user_agent)


def _field(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()  # the database hands times back in UTC
    return str(value).replace("|", "/")


def compute_row_hash(event: AuditEvent, *, chain_seq: int, prev_hash: str) -> str:
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
    return hashlib.sha256("|".join(_field(part) for part in parts).encode()).hexdigest()


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
) -> AuditEvent:
    """Append one event in the caller's transaction (it commits or rolls back with the change it records)."""
    event = AuditEvent(
        occurred_at=now,
        actor_user_id=actor.user_id,
        actor_role=actor.role,
        action=action,
        resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id),
        patient_id=patient_id,
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:400] or None,
        outcome=outcome,
        reason=reason,
    )
    session.add(event)
    await session.flush()
    return event


async def seal_audit_chain(session: AsyncSession, *, batch_size: int = 2000) -> int:
    """Seal committed, unsealed events onto the end of the chain; answer how many were sealed."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_SEAL_LOCK_KEY})
    last = (
        await session.execute(
            select(AuditEvent.chain_seq, AuditEvent.row_hash).where(AuditEvent.chain_seq.is_not(None)).order_by(AuditEvent.chain_seq.desc()).limit(1)
        )
    ).first()
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    pending = (
        await session.execute(select(AuditEvent).where(AuditEvent.chain_seq.is_(None)).order_by(AuditEvent.id).limit(batch_size))
    ).scalars().all()
    for event in pending:
        seq += 1
        row_hash = compute_row_hash(event, chain_seq=seq, prev_hash=prev_hash)
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.id == event.id, AuditEvent.chain_seq.is_(None))
            .values(chain_seq=seq, prev_hash=prev_hash, row_hash=row_hash)
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

    @property
    def intact(self) -> bool:
        return self.first_broken_seq is None


async def verify_audit_chain(session: AsyncSession, *, batch_size: int = 5000) -> ChainReport:
    """Walk the sealed chain in order; report the first event whose place, link or content is wrong."""
    awaiting = await session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_seq.is_(None))) or 0
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    while True:
        rows = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.chain_seq >= expected_seq).order_by(AuditEvent.chain_seq).limit(batch_size)
            )
        ).scalars().all()
        if not rows:
            return ChainReport(checked, None, None, awaiting)
        for event in rows:
            checked += 1
            if event.chain_seq != expected_seq:
                return ChainReport(checked, expected_seq, f"event {expected_seq} of the chain is missing", awaiting)
            if event.prev_hash != expected_prev:
                return ChainReport(checked, event.chain_seq, "its prev_hash does not match the event before it", awaiting)
            if compute_row_hash(event, chain_seq=expected_seq, prev_hash=expected_prev) != event.row_hash:
                return ChainReport(checked, event.chain_seq, "its content does not match its row_hash", awaiting)
            expected_prev, expected_seq = event.row_hash or "", expected_seq + 1
        session.expunge_all()
