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

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from telehealth.db.clock import database_now
from telehealth.lib.clock import Clock
from telehealth.outbox.models import Job
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


async def claim_due_jobs(context: WorkerContext, *, limit: int = 1) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs (queued and due, or running with a lapsed lease), skipping rows another
    worker is claiming, in due order and then in the order they were queued. Due times and leases are read and
    written in the database's clock (db/clock.py)."""
    JOB_TRANSITIONS.action(JobStatus.QUEUED, JobStatus.RUNNING)
    now = database_now(context.clock)
    due = (
        select(Job.id)
        .where(
            or_(
                and_(col(Job.status) == JobStatus.QUEUED, Job.run_at <= now),
                and_(col(Job.status) == JobStatus.RUNNING, Job.lease_until < now),
            )
        )
        .order_by(col(Job.run_at), col(Job.queued_seq))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claim = (
        update(Job)
        .where(col(Job.id).in_(due.scalar_subquery()))
        .values(
            status=JobStatus.RUNNING,
            attempts=Job.attempts + 1,
            lease_until=now + timedelta(seconds=context.settings.job_lease_seconds),
        )
        .returning(col(Job.id), col(Job.kind), col(Job.payload), col(Job.attempts), col(Job.max_attempts))
        .execution_options(synchronize_session=False)
    )
    async with context.session_factory() as session:
        rows = (await session.execute(claim)).all()
        await session.commit()
    return [ClaimedJob(row.id, row.kind, dict(row.payload), row.attempts, row.max_attempts) for row in rows]


async def _finish(
    context: WorkerContext, job: ClaimedJob, target: JobStatus, *, last_error: str | None = None, retry_after: timedelta | None = None
) -> None:
    """Record the attempt's outcome, fenced on the attempt number (a worker that lost its lease changes nothing)."""
    JOB_TRANSITIONS.action(JobStatus.RUNNING, target)
    now = database_now(context.clock)
    values: dict[str, Any] = {"status": target, "lease_until": None}
    if last_error is not None:
        values["last_error"] = last_error
    if retry_after is not None:
        values["run_at"] = now + retry_after
    if target in (JobStatus.DONE, JobStatus.PARKED):
        values["finished_at"] = now
    if target is JobStatus.DONE:
        # A finished job keeps no payload: it held an address and a link, which need not outlive the send.
        values["payload"] = {}
    async with context.session_factory() as session:
        await session.execute(
            update(Job)
            .where(col(Job.id) == job.id, col(Job.status) == JobStatus.RUNNING, col(Job.attempts) == job.attempts)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        await session.commit()


async def run_claimed_job(context: WorkerContext, job: ClaimedJob) -> bool:
    """Run one claimed job; answer whether it succeeded."""
    handler = JOB_HANDLERS.get(job.kind)
    max_attempts = min(job.max_attempts, context.settings.job_max_attempts)
    if job.attempts > max_attempts:  # reclaimed after a lapsed lease on its last attempt: do not run again
        await _finish(context, job, JobStatus.PARKED, last_error="lease lapsed on the last attempt")
        return False
    try:
        if handler is None:
            raise LookupError(f"no handler registered for job kind {job.kind!r}")
        await handler(context, job.payload)
    except Exception as exc:  # any failure is recorded on the job; the worker itself keeps going
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if job.attempts >= max_attempts or handler is None:
            logger.error("job %s (%s) parked after %d attempts", job.id, job.kind, job.attempts)
            await _finish(context, job, JobStatus.PARKED, last_error=error)
        else:
            logger.warning("job %s (%s) failed on attempt %d; will retry", job.id, job.kind, job.attempts)
            await _finish(context, job, JobStatus.QUEUED, last_error=error, retry_after=retry_delay(job.attempts))
        return False
    await _finish(context, job, JobStatus.DONE)
    return True


async def run_due_jobs(context: WorkerContext, *, batch_size: int = 1) -> int:
    """Claim one batch of due jobs and run them side by side; answer how many were claimed.

    The batch runs concurrently because its leases started together: run one after another, the last
    job's lease could lapse while the first ones ran."""
    jobs = await claim_due_jobs(context, limit=batch_size)
    await asyncio.gather(*(run_claimed_job(context, job) for job in jobs))
    return len(jobs)


async def _run_reporting_failures(context: WorkerContext, job: ClaimedJob) -> None:
    try:
        await run_claimed_job(context, job)
    except Exception:  # the outcome could not be recorded (database gone): the lease lapses, the job reruns
        logger.warning("job %s (%s): could not record its outcome; it will run again", job.id, job.kind, exc_info=True)


async def _wait_for_any(events: list[asyncio.Event], timeout: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def run_worker(context: WorkerContext, stop: asyncio.Event, *, poll_seconds: float = 1.0) -> None:
    """Run up to WORKER_CONCURRENCY jobs at once until `stop` is set, then let the jobs in hand finish.

    One loop claims as many due jobs as there are free slots and runs each in its own task, so one poll
    serves every slot and a slow job (a Stripe call, an SMTP server taking its time) holds one slot only.
    Database outages are waited out with backoff, never fatal."""
    from telehealth.outbox.schedule import enqueue_due_periodic_jobs

    concurrency = context.settings.worker_concurrency
    running: set[asyncio.Task[None]] = set()
    slot_freed = asyncio.Event()

    def release_slot(task: asyncio.Task[None]) -> None:
        running.discard(task)
        slot_freed.set()

    failures = 0
    next_schedule_check = 0.0
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            slot_freed.clear()
            free_slots = concurrency - len(running)
            claimed = 0
            try:
                if loop.time() >= next_schedule_check:
                    await enqueue_due_periodic_jobs(context)
                    next_schedule_check = loop.time() + SCHEDULE_CHECK_SECONDS
                if free_slots:
                    for job in await claim_due_jobs(context, limit=free_slots):
                        task = asyncio.create_task(_run_reporting_failures(context, job), name=f"job-{job.kind}")
                        running.add(task)
                        task.add_done_callback(release_slot)
                        claimed += 1
                failures = 0
            except Exception:  # the database may be down or restarting: wait and try again
                failures += 1
                logger.warning("worker could not reach the database; retrying", exc_info=failures == 1)
            if free_slots and claimed == free_slots:
                continue  # every free slot found work: more may be due
            delay = poll_seconds if failures == 0 else min(30.0, poll_seconds * 2**failures)
            # All slots busy: wake when one frees. Otherwise nothing more is due: wait for the next poll.
            await _wait_for_any([stop, slot_freed] if len(running) >= concurrency else [stop], delay)
        if running:
            await asyncio.wait(running)  # finish the jobs in hand
    finally:
        for task in running:  # cancelled (e.g. shutdown timed out): their leases lapse and they rerun
            task.cancel()
