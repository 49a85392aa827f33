"""benchmarks/ceilings.py: a statement sent on the driver is captured with its parameters' types, so written
out for pgbench (parameters as literals) it still runs; SQLAlchemy's statements carry their own casts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.ceilings import inline, typed_parameters
from telehealth.db import driver
from telehealth.outbox.service import _INSERT_JOB


async def test_a_driver_statement_written_out_for_pgbench_runs(session_factory: async_sessionmaker[AsyncSession]) -> None:
    now = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    # a JSON payload with a colon goes in as convert_from(...), a text: only the captured cast fits it to jsonb
    args = (uuid.uuid4(), "probe.kind", json.dumps({"to": "a:b"}), None, now, 8, now)
    async with session_factory() as session:
        typed = await typed_parameters(session, _INSERT_JOB)
        assert "$3::pg_catalog.jsonb" in typed and "$1::pg_catalog.uuid" in typed
        assert await driver.fetchval(session, inline(typed, args)) == args[0]
        await session.rollback()
    async with session_factory() as session:
        with pytest.raises(DBAPIError, match="jsonb"):
            await driver.fetchval(session, inline(_INSERT_JOB, args))  # as captured before: the literal's type is text
        await session.rollback()
