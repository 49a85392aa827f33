"""Putting work in the outbox. Call inside the transaction of the change that causes the work: if that
transaction rolls back, the job was never there (an email for a booking that failed is never sent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.outbox.models import Job
from telehealth.outbox.states import JobStatus

DEFAULT_MAX_ATTEMPTS = 8


async def enqueue_job(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> bool:
    """Queue a job; answer False when a live job with the same dedupe key already exists."""
    from telehealth.outbox.worker import JOB_HANDLERS, import_job_modules  # refuse a typo at enqueue time

    import_job_modules()
    if kind not in JOB_HANDLERS:
        raise ValueError(f"no job handler is registered for {kind!r}")
    statement = insert(Job).values(
        kind=kind,
        payload=payload,
        status=JobStatus.QUEUED,
        dedupe_key=dedupe_key,
        run_at=run_at or now,
        max_attempts=max_attempts,
        created_at=now,
    )
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(
            index_elements=["dedupe_key"],
            index_where=text("dedupe_key IS NOT NULL AND status IN ('queued', 'running')"),
        )
    result = await session.execute(statement.returning(Job.id))
    return result.scalar_one_or_none() is not None
