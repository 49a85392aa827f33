"""Housekeeping of sign-in data: ended sessions, spent or expired links."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_
from sqlmodel import col

from telehealth.accounts.models import AccountToken, UserSession
from telehealth.db.engine import transaction
from telehealth.outbox.schedule import run_every
from telehealth.outbox.worker import WorkerContext, job_handler

PRUNE_SIGN_IN_DATA = "accounts.prune_sign_in_data"
# Ended sessions and spent links are kept a day, for support questions.
GRACE = timedelta(days=1)


@job_handler(PRUNE_SIGN_IN_DATA)
async def prune_sign_in_data(context: WorkerContext, payload: dict[str, Any]) -> None:
    now = context.clock.now()
    cutoff = now - GRACE
    idle_cutoff = now - timedelta(minutes=context.settings.session_idle_minutes) - GRACE
    async with transaction(context.session_factory) as session:
        await session.execute(
            delete(UserSession).where(
                or_(col(UserSession.expires_at) < cutoff, col(UserSession.revoked_at) < cutoff, col(UserSession.last_seen_at) < idle_cutoff)
            )
        )
        await session.execute(delete(AccountToken).where(or_(col(AccountToken.expires_at) < cutoff, col(AccountToken.used_at) < cutoff)))


run_every(PRUNE_SIGN_IN_DATA, timedelta(hours=1))
