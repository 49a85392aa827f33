"""rate_limit_event: one row per counted request, shared by every app process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Identity, Index
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp


class RateLimitEvent(SQLModel, table=True):
    __tablename__ = "rate_limit_event"
    __table_args__ = (Index("ix_rate_limit_event_bucket_key_occurred_at", "bucket", "key", "occurred_at"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    bucket: str = Field(max_length=40)  # what is limited: "sign_in", "waitlist_join", "two_factor_failure"
    key: str = Field(max_length=128)  # who: a client address, or an account id
    occurred_at: datetime = utc_timestamp()
