"""audit_event: append-only (a trigger refuses DELETE, TRUNCATE and any UPDATE but the one-time sealing)
and chained by the sealer with a keyed hash (`audit.service.seal_audit_chain`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, Identity
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    # Sequential on purpose, never shown in a URL.
    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    # Set once by the sealer, in the order events committed; the chain is walked in this order.
    chain_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, unique=True))
    occurred_at: datetime = utc_timestamp(index=True)
    actor_user_id: uuid.UUID | None = Field(default=None, index=True)
    actor_role: str = Field(max_length=20)  # a Role, or "system" / "anonymous" / "sitter"
    action: str = Field(max_length=80)  # e.g. "auth.sign_in", "patient.record.read"
    resource_type: str = Field(max_length=60)
    resource_id: str | None = Field(default=None, max_length=64)
    patient_id: uuid.UUID | None = Field(default=None, index=True)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=400)
    outcome: str = Field(max_length=20)  # success, failure, denied
    reason: str | None = Field(default=None, max_length=80)  # a machine code, never free text
    prev_hash: str | None = Field(default=None, max_length=64)
    row_hash: str | None = Field(default=None, max_length=64, unique=True)
    # Which HMAC key sealed it (audit/keys.py); "sha256-legacy" for events sealed before keyed hashing.
    key_id: str | None = Field(default=None, max_length=20)
