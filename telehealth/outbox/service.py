"""Putting work in the outbox. Call inside the transaction of the change that causes the work: if that
transaction rolls back, the job was never there (an email for a booking that failed is never sent)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.db import driver
from telehealth.db.status_swap import swap_status
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, NotFound
from telehealth.outbox.models import Job
from telehealth.outbox.states import JOB_TRANSITIONS, JobStatus

DEFAULT_MAX_ATTEMPTS = 8


# Every queued email (joins, bookings, webhooks) inserts one: on the driver (db/driver.py), SQL text. The columns are
# those SQLAlchemy's INSERT of a Job sent, its defaults (status queued, no attempts yet) spelled out.
_INSERT_JOB = """
INSERT INTO job (id, kind, payload, status, dedupe_key, run_at, attempts, max_attempts, created_at)
VALUES ($1, $2, $3, 'queued', $4, $5, 0, $6, $7)
RETURNING id
"""
_INSERT_JOB_UNLESS_LIVE = _INSERT_JOB.replace(
    "RETURNING id", "ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running') DO NOTHING\nRETURNING id"
)


async def _value_of(session: AsyncSession, expression: ColumnElement[datetime]) -> datetime:
    value = await session.scalar(select(expression))
    assert value is not None  # now(), moved or not, or an injected clock's time
    return value


async def enqueue_job(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    now: datetime | ColumnElement[datetime],  # the caller's clock; the worker passes the database's now()
    run_at: datetime | ColumnElement[datetime] | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> bool:
    """Queue a job; answer False when a live job with the same dedupe key already exists."""
    from telehealth.outbox.worker import JOB_HANDLERS  # refuse a typo at enqueue time

    if kind not in JOB_HANDLERS:
        # the entry registers every handler by importing telehealth/jobs.py
        raise ValueError(f"no job handler is registered for {kind!r} (is its jobs.py in telehealth/jobs.py, and that imported?)")
    # The database's now() (the worker's periodic runs): read in this transaction, it is the very value an INSERT in
    # it would use (now() is the transaction's start), so one INSERT serves every caller.
    created_at = now if isinstance(now, datetime) else await _value_of(session, now)
    due_at = created_at if run_at is None else run_at if isinstance(run_at, datetime) else await _value_of(session, run_at)
    job_id = await driver.fetchval(
        session,
        _INSERT_JOB if dedupe_key is None else _INSERT_JOB_UNLESS_LIVE,
        uuid.uuid4(),
        kind,
        json.dumps(payload),  # jsonb: the dialect's codec takes the text (SQLAlchemy serializes with json.dumps)
        dedupe_key,
        driver.utc(due_at),
        max_attempts,
        driver.utc(created_at),
    )
    return job_id is not None


# Operator commands (`litestar jobs ...`): what a person at the command line may see and do with jobs.


async def list_jobs(session: AsyncSession, *, parked_only: bool = False, limit: int = 50) -> list[Job]:
    """Live and parked jobs (or parked ones only), newest first. Done jobs are history: the pruner's."""
    statuses = [JobStatus.PARKED] if parked_only else [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PARKED]
    query = select(Job).where(col(Job.status).in_(statuses)).order_by(col(Job.created_at).desc(), col(Job.id)).limit(limit)
    return list((await session.execute(query)).scalars())


async def get_job(session: AsyncSession, job_id: uuid.UUID) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound("job.not_found", f"There is no job {job_id}.")
    return job


async def requeue_parked_job(
    session: AsyncSession, job_id: uuid.UUID, *, actor: Actor, now: datetime, record_audit_event: Callable[..., Awaitable[object]]
) -> None:
    """Give a parked job a fresh set of attempts, due now; audited as `job.requeue` with the recorder the caller
    hands in (audit.service.record_audit_event: the outbox, a base package, knows no area).

    Refuses (409) a job that is not parked, and one whose dedupe key another live job holds (that job
    will do the work: e.g. a newer reminder for the same appointment)."""
    job = await get_job(session, job_id)
    if job.status != JobStatus.PARKED:
        JOB_TRANSITIONS.action(job.status, JobStatus.QUEUED)  # the table's own refusal, naming both statuses
    try:
        async with session.begin_nested():  # the unique index's refusal must not end the caller's transaction
            action = await swap_status(
                session,
                Job,
                job_id,
                table=JOB_TRANSITIONS,
                source=JobStatus.PARKED,
                target=JobStatus.QUEUED,
                values={"attempts": 0, "run_at": now, "finished_at": None, "lease_until": None},
            )
    except IntegrityError:
        raise Conflict(
            "job.duplicate_live", f"A live job with the dedupe key {job.dedupe_key!r} exists already; it does this job's work."
        ) from None
    await record_audit_event(
        session, actor=actor, action=f"{JOB_TRANSITIONS.name}.{action}", resource_type=JOB_TRANSITIONS.name, resource_id=job_id, now=now
    )
