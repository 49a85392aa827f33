"""Rate limits counted in PostgreSQL, so they hold across every app process (unlike an in-memory limiter).

Rows in rate_limit_event are only ever added and pruned by age (system/jobs.py), so every window rolls:
nothing resets a count but time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from telehealth.system.models import RateLimitEvent


async def count_recent(session: AsyncSession, *, bucket: str, key: str, window: timedelta, now: datetime) -> int:
    """How many events `key` has in `bucket` within `window` before `now`.

    Takes a transaction-scoped lock per (bucket, key) first and holds it to commit, so a concurrent caller
    counts only after this one has recorded (or not) its event: a burst is counted one by one.
    """
    key = key[:128]
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": f"rate:{bucket}:{key}"})
    recent = await session.scalar(
        select(func.count())
        .select_from(RateLimitEvent)
        .where(RateLimitEvent.bucket == bucket, RateLimitEvent.key == key, RateLimitEvent.occurred_at >= now - window)
    )
    return recent or 0


def record_event(session: AsyncSession, *, bucket: str, key: str, now: datetime) -> None:
    """Count one event for `key` in `bucket` (call after count_recent, in the same transaction)."""
    session.add(RateLimitEvent(bucket=bucket, key=key[:128], occurred_at=now))


async def over_rate_limit(session: AsyncSession, *, bucket: str, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """True when `key` already made `limit` counted requests in `window`; otherwise count this one.

    A refused request is not counted, so waiting out the window always works.
    """
    if await count_recent(session, bucket=bucket, key=key, window=window, now=now) >= limit:
        return True
    record_event(session, bucket=bucket, key=key, now=now)
    return False
