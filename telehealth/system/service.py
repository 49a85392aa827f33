"""Readiness: can we reach PostgreSQL, and is the schema at the newest migration?"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.db.migrate import schema_is_current


async def readiness(engine: AsyncEngine) -> dict[str, Any]:
    try:
        current = await schema_is_current(engine)
    except Exception as exc:  # any failure to reach the database means "not ready", with the reason
        return {"status": "unavailable", "database": "unreachable", "reason": type(exc).__name__}
    if not current:
        return {"status": "unavailable", "database": "reachable", "migrations": "pending"}
    return {"status": "ready", "database": "reachable", "migrations": "current"}
