"""Writing and verifying the audit trail.

Each row carries the SHA-256 of its own content plus the previous row's hash. Writers take a
transaction-scoped advisory lock so the chain stays a line: the next writer reads the newest hash only
after the previous writer has committed or rolled back.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.audit.models import AuditEvent

AUDIT_CHAIN_LOCK_KEY = 7_461_002
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


def compute_row_hash(event: AuditEvent) -> str:
    parts = (
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
        event.prev_hash,
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
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_CHAIN_LOCK_KEY})
    newest = await session.execute(select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1))
    prev_hash = newest.scalar_one_or_none() or GENESIS_HASH
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
        prev_hash=prev_hash,
        row_hash="",
    )
    event.row_hash = compute_row_hash(event)
    session.add(event)
    await session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    rows_checked: int
    first_broken_id: int | None
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


async def verify_audit_chain(session: AsyncSession, *, batch_size: int = 5000) -> ChainReport:
    """Walk the chain in id order; report the first row whose content or link does not match."""
    expected_prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        rows = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch_size)
            )
        ).scalars().all()
        if not rows:
            return ChainReport(rows_checked=checked, first_broken_id=None, problem=None)
        for event in rows:
            checked += 1
            if event.prev_hash != expected_prev:
                return ChainReport(checked, event.id, "its prev_hash does not match the row before it")
            if compute_row_hash(event) != event.row_hash:
                return ChainReport(checked, event.id, "its content does not match its row_hash")
            expected_prev = event.row_hash
            last_id = event.id or last_id
        session.expunge_all()
