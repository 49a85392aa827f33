"""Rate limits counted in PostgreSQL, so they hold across every app process (unlike an in-memory limiter).

Rows in rate_limit_event are only ever added and pruned by age (system/jobs.py), so every window rolls:
nothing resets a count but time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.db import driver
from telehealth.system.models import RateLimitEvent

# Every waiting-list join and sign-in runs these: on the driver (db/driver.py), SQL text, no ORM objects.
_LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtext($1))"
_COUNT = "SELECT count(*) FROM rate_limit_event WHERE bucket = $1 AND key = $2 AND occurred_at >= $3"
_INSERT = "INSERT INTO rate_limit_event (bucket, key, occurred_at) VALUES ($1, $2, $3)"


async def count_recent(session: AsyncSession, *, bucket: str, key: str, window: timedelta, now: datetime) -> int:
    """How many events `key` has in `bucket` within `window` before `now`.

    Takes a transaction-scoped lock per (bucket, key) first and holds it to commit, so a concurrent caller
    counts only after this one has recorded (or not) its event: a burst is counted one by one.
    """
    key = key[:128]
    await driver.execute(session, _LOCK_KEY, f"rate:{bucket}:{key}")
    recent: int = await driver.fetchval(session, _COUNT, bucket, key, driver.utc(now - window))
    return recent


def record_event(session: AsyncSession, *, bucket: str, key: str, now: datetime) -> None:
    """Count one event for `key` in `bucket` (call after count_recent, in the same transaction). Written with the
    caller's next flush; over_rate_limit, which counts and records in one go, sends its INSERT at once."""
    session.add(RateLimitEvent(bucket=bucket, key=key[:128], occurred_at=now))


async def over_rate_limit(session: AsyncSession, *, bucket: str, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """True when `key` already made `limit` counted requests in `window`; otherwise count this one.

    A refused request is not counted, so waiting out the window always works.
    """
    if await count_recent(session, bucket=bucket, key=key, window=window, now=now) >= limit:
        return True
    await driver.execute(session, _INSERT, bucket, key[:128], driver.utc(now))
    return False
