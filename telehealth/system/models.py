"""rate_limit_event: one row per counted request, shared by every app process; schema_compatibility for rolling releases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, Identity, Index, text
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp


class RateLimitEvent(SQLModel, table=True):
    __tablename__ = "rate_limit_event"
    __table_args__ = (Index("ix_rate_limit_event_bucket_key_occurred_at", "bucket", "key", "occurred_at"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    bucket: str = Field(max_length=40)  # what is limited: "sign_in", "waitlist_join", "two_factor_failure"
    key: str = Field(max_length=128)  # who: a client address, or an account id
    occurred_at: datetime = utc_timestamp()


class SchemaCompatibility(SQLModel, table=True):
    """One row: the oldest code revision this database still serves (migration 0025; db/migrate.py). A
    migration that breaks older code raises it, so instances running that code stop being ready."""

    __tablename__ = "schema_compatibility"
    __table_args__ = (CheckConstraint("one_row", name="one_row"),)

    one_row: bool = Field(sa_column=Column(Boolean, primary_key=True, server_default=text("true")))
    oldest_code_revision: str = Field(max_length=100)
