"""Housekeeping of shared infrastructure tables."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from telehealth.db.engine import transaction
from telehealth.outbox.schedule import run_every
from telehealth.outbox.worker import WorkerContext, job_handler
from telehealth.system.models import RateLimitEvent

PRUNE_RATE_LIMIT_EVENTS = "system.prune_rate_limit_events"
LONGEST_WINDOW = timedelta(days=1)  # no limit looks further back than a day


@job_handler(PRUNE_RATE_LIMIT_EVENTS)
async def prune_rate_limit_events(context: WorkerContext, payload: dict[str, Any]) -> None:
    async with transaction(context.session_factory) as session:
        await session.execute(delete(RateLimitEvent).where(col(RateLimitEvent.occurred_at) < context.clock.now() - LONGEST_WINDOW))


run_every(PRUNE_RATE_LIMIT_EVENTS, timedelta(hours=1))
