"""The worker: claims due jobs with FOR UPDATE SKIP LOCKED, runs them, retries with backoff, parks after
max attempts. A claim is a lease: a worker killed mid-job loses nothing, because once the lease lapses
another worker claims the job again. Completion is fenced on the attempt number, so a worker that lost its
lease can never mark someone else's attempt done."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.lib.clock import Clock
from telehealth.outbox.states import JOB_TRANSITIONS, JobStatus
from telehealth.settings import Settings

logger = logging.getLogger("telehealth.worker")

SCHEDULE_CHECK_SECONDS = 10.0
JobHandler = Callable[["WorkerContext", dict[str, Any]], Awaitable[None]]
JOB_HANDLERS: dict[str, JobHandler] = {}


def job_handler(kind: str) -> Callable[[JobHandler], JobHandler]:
    """Register a coroutine as the handler of one job kind (each area's jobs.py uses this)."""

    def register(handler: JobHandler) -> JobHandler:
        if kind in JOB_HANDLERS and JOB_HANDLERS[kind] is not handler:
            raise ValueError(f"job kind {kind!r} is registered twice")
        JOB_HANDLERS[kind] = handler
        return handler

    return register


@dataclass
class WorkerContext:
    """What a job handler may use. Handlers open their own transactions with `telehealth.db.engine.transaction`."""

    session_factory: async_sessionmaker[AsyncSession]
    settings: Settings
    clock: Clock
    services: dict[str, Any] = field(default_factory=dict)  # e.g. "mailer"


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 10 s, 20 s, 40 s ... capped at one hour."""
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


CLAIM_SQL = text(
    """
    UPDATE job SET status = 'running', attempts = attempts + 1, lease_until = :lease_until
    WHERE id IN (
        SELECT id FROM job
        WHERE (status = 'queued' AND run_at <= :now) OR (status = 'running' AND lease_until < :now)
        ORDER BY run_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, kind, payload, attempts, max_attempts
    """
)


async def claim_due_jobs(context: WorkerContext, *, limit: int = 10) -> list[ClaimedJob]:
    now = context.clock.now()
    JOB_TRANSITIONS.action(JobStatus.QUEUED, JobStatus.RUNNING)
    async with context.session_factory() as session:
        rows = (
            await session.execute(
                CLAIM_SQL,
                {"now": now, "limit": limit, "lease_until": now + timedelta(seconds=context.settings.job_lease_seconds)},
            )
        ).all()
        await session.commit()
    return [ClaimedJob(row.id, row.kind, dict(row.payload), row.attempts, row.max_attempts) for row in rows]


async def _finish(context: WorkerContext, job: ClaimedJob, target: JobStatus, values: dict[str, Any]) -> None:
    JOB_TRANSITIONS.action(JobStatus.RUNNING, target)
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    async with context.session_factory() as session:
        await session.execute(
            text(
                f"UPDATE job SET status = :target, lease_until = NULL, {assignments} "
                "WHERE id = :id AND status = 'running' AND attempts = :attempts"
            ),
            {"target": target.value, "id": job.id, "attempts": job.attempts, **values},
        )
        await session.commit()


async def run_claimed_job(context: WorkerContext, job: ClaimedJob) -> bool:
    """Run one claimed job; answer whether it succeeded."""
    handler = JOB_HANDLERS.get(job.kind)
    max_attempts = min(job.max_attempts, context.settings.job_max_attempts)
    if job.attempts > max_attempts:  # reclaimed after a lapsed lease on its last attempt: do not run again
        await _finish(context, job, JobStatus.PARKED, {"last_error": "lease lapsed on the last attempt", "finished_at": context.clock.now()})
        return False
    try:
        if handler is None:
            raise LookupError(f"no handler registered for job kind {job.kind!r}")
        await handler(context, job.payload)
    except Exception as exc:  # any failure is recorded on the job; the worker itself keeps going
        error = f"{type(exc).__name__}: {exc}"[:2000]
        now = context.clock.now()
        if job.attempts >= max_attempts or handler is None:
            logger.error("job %s (%s) parked after %d attempts", job.id, job.kind, job.attempts)
            await _finish(context, job, JobStatus.PARKED, {"last_error": error, "finished_at": now})
        else:
            logger.warning("job %s (%s) failed on attempt %d; will retry", job.id, job.kind, job.attempts)
            await _finish(context, job, JobStatus.QUEUED, {"last_error": error, "run_at": now + retry_delay(job.attempts)})
        return False
    # A finished job keeps no payload: it held an address and a link, which need not outlive the send.
    await _finish(context, job, JobStatus.DONE, {"finished_at": context.clock.now(), "payload": "{}"})
    return True


async def run_due_jobs(context: WorkerContext, *, batch_size: int = 1) -> int:
    """Claim and run one batch of due jobs; answer how many were claimed.

    The default batch is one job, so a lease never lapses while earlier jobs of the batch run slowly.
    """
    jobs = await claim_due_jobs(context, limit=batch_size)
    for job in jobs:
        await run_claimed_job(context, job)
    return len(jobs)


async def run_worker(context: WorkerContext, stop: asyncio.Event, *, poll_seconds: float = 1.0) -> None:
    """Loop until `stop` is set. Database outages are waited out with backoff, never fatal."""
    from telehealth.outbox.schedule import enqueue_due_periodic_jobs

    failures = 0
    next_schedule_check = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            if loop.time() >= next_schedule_check:
                await enqueue_due_periodic_jobs(context)
                next_schedule_check = loop.time() + SCHEDULE_CHECK_SECONDS
            claimed = await run_due_jobs(context)
            failures = 0
        except Exception:  # the database may be down or restarting: wait and try again
            failures += 1
            logger.warning("worker could not reach the database; retrying", exc_info=failures == 1)
            claimed = 0
        if claimed == 0:
            delay = poll_seconds if failures == 0 else min(30.0, poll_seconds * 2**failures)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass


def import_job_modules() -> None:
    """Import every area's jobs.py so their handlers are registered."""
    import telehealth.accounts.jobs  # noqa: F401
    import telehealth.audit.jobs  # noqa: F401
    import telehealth.billing.jobs  # noqa: F401
    import telehealth.clinicians.jobs  # noqa: F401
    import telehealth.dosing.jobs  # noqa: F401
    import telehealth.notifications.jobs  # noqa: F401
    import telehealth.outbox.jobs  # noqa: F401
    import telehealth.scheduling.jobs  # noqa: F401
    import telehealth.system.jobs  # noqa: F401
    import telehealth.waitlist.jobs  # noqa: F401

