"""Holds that were never confirmed lapse, and their time is offered again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telehealth.db.engine import transaction
from telehealth.outbox.schedule import run_every
from telehealth.outbox.worker import WorkerContext, job_handler
from telehealth.scheduling.notices import REMIND_JOB, send_reminder_if_still_due
from telehealth.scheduling.service import expire_lapsed_holds

EXPIRE_HOLDS = "scheduling.expire_holds"


@job_handler(EXPIRE_HOLDS)
async def expire_holds(context: WorkerContext, payload: dict[str, Any]) -> None:
    async with transaction(context.session_factory) as session:
        await expire_lapsed_holds(session, now=context.clock.now())


run_every(EXPIRE_HOLDS, timedelta(minutes=1))


@job_handler(REMIND_JOB)
async def remind(context: WorkerContext, payload: dict[str, Any]) -> None:
    async with transaction(context.session_factory) as session:
        await send_reminder_if_still_due(session, payload, now=context.clock.now(), settings=context.settings)
