"""Readiness (can we reach PostgreSQL, is the schema at the newest migration?) and the outbox figures of /metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.db.migrate import schema_state


async def outbox_figures(engine: AsyncEngine, *, now: datetime) -> tuple[dict[str, int], float]:
    """Jobs by live status and parked, and how long the oldest due job has waited (seconds)."""
    async with engine.connect() as connection:
        counts: dict[str, int] = dict(
            (
                await connection.execute(
                    text("SELECT status, count(*) FROM job WHERE status IN ('queued', 'running', 'parked') GROUP BY status")
                )
            ).all()
        )
        oldest = await connection.scalar(text("SELECT min(run_at) FROM job WHERE status = 'queued' AND run_at <= :now"), {"now": now})
    return {str(k): int(v) for k, v in counts.items()}, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


async def readiness(engine: AsyncEngine) -> dict[str, Any]:
    """Ready when the database answers and is at this code's head, or ahead of it and still compatible (a
    rolling release migrates before the old instances leave: they stay in the load balancer)."""
    try:
        state = await schema_state(engine)
    except Exception as exc:  # any failure to reach the database means "not ready", with the reason
        return {"status": "unavailable", "database": "unreachable", "reason": type(exc).__name__}
    if state in ("pending", "incompatible"):
        return {"status": "unavailable", "database": "reachable", "migrations": state}
    return {"status": "ready", "database": "reachable", "migrations": state}
