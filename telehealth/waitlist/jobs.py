"""The expiry sweep: invitations past their time expire and pass to the next person."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telehealth.db.engine import transaction
from telehealth.outbox.schedule import run_every
from telehealth.outbox.worker import WorkerContext, job_handler
from telehealth.waitlist.invitations import expire_due_invitations

EXPIRE_INVITATIONS = "waitlist.expire_invitations"


@job_handler(EXPIRE_INVITATIONS)
async def expire_invitations(context: WorkerContext, payload: dict[str, Any]) -> None:
    async with transaction(context.session_factory) as session:
        await expire_due_invitations(session, now=context.clock.now(), settings=context.settings)


run_every(EXPIRE_INVITATIONS, timedelta(minutes=15))
