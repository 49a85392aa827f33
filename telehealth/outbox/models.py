"""job: one row per unit of background work (an email, a reminder, an expiry sweep)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key
from telehealth.outbox.states import JobStatus

STATUS_VALUES = ", ".join(f"'{status.value}'" for status in JobStatus)


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATUS_VALUES})", name="status_known"),
        # The worker's claim query reads only live jobs, in due order, then in the order they were queued.
        Index("ix_job_due_in_order", "run_at", "queued_seq", postgresql_where=text("status IN ('queued', 'running')")),
        # A job with a dedupe key exists once while it is live (e.g. one reminder per appointment).
        Index(
            "uq_job_live_dedupe_key",
            "dedupe_key",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL AND status IN ('queued', 'running')"),
        ),
    )

    id: uuid.UUID = uuid_primary_key()
    kind: str = Field(max_length=80)  # a registered handler name, e.g. "notifications.send_email"
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    status: str = Field(default=JobStatus.QUEUED, max_length=20)
    dedupe_key: str | None = Field(default=None, max_length=200)
    run_at: datetime = utc_timestamp()
    attempts: int = 0
    max_attempts: int = 8
    lease_until: datetime | None = utc_timestamp(nullable=True)
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = utc_timestamp(default_now=True)
    finished_at: datetime | None = utc_timestamp(nullable=True)
    # Jobs due at the same moment run in the order they were queued (run_at and created_at are the caller's
    # clock and tie within a request): the database numbers each row as it is inserted. NULL only on jobs queued
    # before migration 0033.
    queued_seq: int | None = Field(default=None, sa_column=Column(BigInteger, server_default=text("nextval('job_queued_seq')")))


class PeriodicTask(SQLModel, table=True):
    """When each periodic job is next due. A compare-and-swap on next_run_at lets exactly one worker
    enqueue each run, however many workers poll."""

    __tablename__ = "periodic_task"

    name: str = Field(max_length=80, primary_key=True)
    next_run_at: datetime = utc_timestamp()
