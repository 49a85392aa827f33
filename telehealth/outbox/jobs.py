"""Housekeeping of the outbox itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from telehealth.db.clock import database_now
from telehealth.db.engine import transaction
from telehealth.outbox.models import Job
from telehealth.outbox.schedule import run_every
from telehealth.outbox.states import JobStatus
from telehealth.outbox.worker import WorkerContext, job_handler

PRUNE_FINISHED_JOBS = "outbox.prune_finished"
KEEP_FINISHED_JOBS = timedelta(days=7)


@job_handler(PRUNE_FINISHED_JOBS)
async def prune_finished_jobs(context: WorkerContext, payload: dict[str, Any]) -> None:
    """Done jobs are kept a week for troubleshooting, then deleted. Parked jobs stay until an operator acts."""
    cutoff = database_now(context.clock) - KEEP_FINISHED_JOBS  # finished_at is written in the database's clock
    async with transaction(context.session_factory) as session:
        await session.execute(delete(Job).where(col(Job.status) == JobStatus.DONE, Job.finished_at < cutoff))


run_every(PRUNE_FINISHED_JOBS, timedelta(hours=1))
