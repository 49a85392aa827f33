"""Rate limits counted in PostgreSQL, so they hold across every app process (unlike an in-memory limiter)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.system.models import RateLimitEvent


async def over_rate_limit(
    session: AsyncSession, *, bucket: str, key: str, limit: int, window: timedelta, now: datetime
) -> bool:
    """True when `key` already made `limit` counted requests in `window`; otherwise count this one.

    A refused request is not counted, so waiting out the window always works. A transaction-scoped lock
    per (bucket, key) makes a burst of parallel requests count one by one instead of all passing.
    """
    key = key[:128]
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": f"rate:{bucket}:{key}"})
    recent = await session.scalar(
        select(func.count())
        .select_from(RateLimitEvent)
        .where(RateLimitEvent.bucket == bucket, RateLimitEvent.key == key, RateLimitEvent.occurred_at >= now - window)
    )
    if (recent or 0) >= limit:
        return True
    session.add(RateLimitEvent(bucket=bucket, key=key, occurred_at=now))
    return False
