"""Sealing the audit chain every few seconds, and anchoring its head outside the database every minute."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telehealth.audit.anchors import anchor_path
from telehealth.audit.keys import audit_keys
from telehealth.audit.service import anchor_chain_head, seal_audit_chain
from telehealth.db.engine import transaction
from telehealth.outbox.schedule import run_every
from telehealth.outbox.worker import WorkerContext, job_handler

SEAL_AUDIT_CHAIN = "audit.seal_chain"
ANCHOR_AUDIT_CHAIN = "audit.anchor_chain"


@job_handler(SEAL_AUDIT_CHAIN)
async def seal_chain(context: WorkerContext, payload: dict[str, Any]) -> None:
    keys = audit_keys(context.settings)
    while True:  # drain the backlog in batches, each its own short transaction
        async with transaction(context.session_factory) as session:
            if await seal_audit_chain(session, keys) == 0:
                return


@job_handler(ANCHOR_AUDIT_CHAIN)
async def anchor_chain(context: WorkerContext, payload: dict[str, Any]) -> None:
    path = anchor_path(context.settings)
    if path is None:  # not configured (development with a DATABASE_URL); production requires it
        return
    async with context.session_factory() as session:
        await anchor_chain_head(session, audit_keys(context.settings), path, now=context.clock.now())


run_every(SEAL_AUDIT_CHAIN, timedelta(seconds=10))
# A minute bounds how many of the newest events could be cut from the end unseen; verify-audit anchors too.
run_every(ANCHOR_AUDIT_CHAIN, timedelta(minutes=1))
