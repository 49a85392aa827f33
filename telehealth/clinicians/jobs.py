"""The daily reminder of credentials expiring within 30 days (each credential and expiry emailed once)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telehealth.clinicians.expiry import remind_expiring_credentials
from telehealth.db.engine import transaction
from telehealth.outbox.schedule import run_every
from telehealth.outbox.worker import WorkerContext, job_handler

CREDENTIAL_REMINDERS = "clinicians.credential_reminders"


@job_handler(CREDENTIAL_REMINDERS)
async def credential_reminders(context: WorkerContext, payload: dict[str, Any]) -> None:
    async with transaction(context.session_factory) as session:
        await remind_expiring_credentials(session, now=context.clock.now(), settings=context.settings)


run_every(CREDENTIAL_REMINDERS, timedelta(days=1))
