"""Readiness (can we reach PostgreSQL, is the schema at the newest migration?) and the outbox figures of /metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.db.migrate import schema_is_current


async def outbox_figures(engine: AsyncEngine, *, now: datetime) -> tuple[dict[str, int], float]:
    """Jobs by live status and parked, and how long the oldest due job has waited (seconds)."""
    async with engine.connect() as connection:
        counts = dict((await connection.execute(
            text("SELECT status, count(*) FROM job WHERE status IN ('queued', 'running', 'parked') GROUP BY status")
        )).all())  # fmt: skip
        oldest = await connection.scalar(text("SELECT min(run_at) FROM job WHERE status = 'queued' AND run_at <= :now"), {"now": now})
    return {str(k): int(v) for k, v in counts.items()}, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


async def readiness(engine: AsyncEngine) -> dict[str, Any]:
    try:
        current = await schema_is_current(engine)
    except Exception as exc:  # any failure to reach the database means "not ready", with the reason
        return {"status": "unavailable", "database": "unreachable", "reason": type(exc).__name__}
    if not current:
        return {"status": "unavailable", "database": "reachable", "migrations": "pending"}
    return {"status": "ready", "database": "reachable", "migrations": "current"}
