"""Periodic jobs (pruning, expiry sweeps, reminders scans): declared once, enqueued once per period.

Each worker asks every few seconds; `UPDATE periodic_task SET next_run_at = ... WHERE next_run_at <= now`
succeeds for one of them only, and that one enqueues the job in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col

from telehealth.db.clock import database_now
from telehealth.db.engine import transaction
from telehealth.outbox.models import PeriodicTask
from telehealth.outbox.service import enqueue_job

if TYPE_CHECKING:  # the worker imports this module
    from telehealth.outbox.worker import WorkerContext


@dataclass(frozen=True)
class Periodic:
    kind: str  # the job kind to enqueue; also the schedule's name
    every: timedelta


PERIODIC_JOBS: dict[str, Periodic] = {}


def run_every(kind: str, every: timedelta) -> None:
    """Declare that the job `kind` runs once per `every` (call next to its handler in a jobs.py)."""
    PERIODIC_JOBS[kind] = Periodic(kind, every)


async def enqueue_due_periodic_jobs(context: WorkerContext) -> int:
    """Enqueue each periodic job whose time has come; answer how many this worker enqueued."""
    if not PERIODIC_JOBS:
        return 0
    now = database_now(context.clock)  # every worker agrees on when a run is due
    enqueued = 0
    async with transaction(context.session_factory) as session:
        await session.execute(
            insert(PeriodicTask)
            .values([{"name": kind, "next_run_at": now} for kind in PERIODIC_JOBS])
            .on_conflict_do_nothing(index_elements=["name"])
        )
        for periodic in PERIODIC_JOBS.values():
            won = await session.execute(
                update(PeriodicTask)
                .where(col(PeriodicTask.name) == periodic.kind, PeriodicTask.next_run_at <= now)
                .values(next_run_at=now + periodic.every)
                .returning(col(PeriodicTask.name))
            )
            # The dedupe key skips a run while the previous one is still queued: slow runs never pile up.
            if won.scalar_one_or_none() is not None and await enqueue_job(
                session, kind=periodic.kind, payload={}, now=now, dedupe_key=f"periodic:{periodic.kind}"
            ):
                enqueued += 1
    return enqueued
