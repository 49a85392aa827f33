"""Sealing the audit chain: every few seconds, committed events get their place and hash."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telehealth.audit.service import seal_audit_chain
from telehealth.db.engine import transaction
from telehealth.outbox.schedule import run_every
from telehealth.outbox.worker import WorkerContext, job_handler

SEAL_AUDIT_CHAIN = "audit.seal_chain"


@job_handler(SEAL_AUDIT_CHAIN)
async def seal_chain(context: WorkerContext, payload: dict[str, Any]) -> None:
    while True:  # drain the backlog in batches, each its own short transaction
        async with transaction(context.session_factory) as session:
            if await seal_audit_chain(session) == 0:
                return


run_every(SEAL_AUDIT_CHAIN, timedelta(seconds=10))
