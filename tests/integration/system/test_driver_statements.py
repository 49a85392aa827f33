"""db/driver.py: statements on asyncpg's connection belong to the session's own transaction, and fail as
SQLAlchemy's would (DBAPIError with the SQLSTATE), so callers and error handlers see no difference."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from telehealth.db import driver
from telehealth.db.engine import make_autocommit_session_factory

_INSERT = (
    "INSERT INTO audit_event (occurred_at, actor_role, action, resource_type, outcome) VALUES (now(), 'system', $1, 'probe', 'success')"
)
_COUNT = "SELECT count(*) FROM audit_event WHERE action = $1"


async def test_a_driver_statement_commits_and_rolls_back_with_the_session(session_factory: async_sessionmaker[AsyncSession]) -> None:
    marker = f"driver.{uuid.uuid4().hex[:8]}"
    async with session_factory() as session:
        await driver.execute(session, _INSERT, marker)
        # the ORM's own statements in the same session see it: one transaction, one connection
        assert (await session.execute(text("SELECT count(*) FROM audit_event WHERE action = :a"), {"a": marker})).scalar_one() == 1
        await session.rollback()
    async with session_factory() as session:
        assert await driver.fetchval(session, _COUNT, marker) == 0
        await driver.execute(session, _INSERT, marker)
        await session.commit()
    async with session_factory() as session:
        rows = await driver.fetch(session, "SELECT action FROM audit_event WHERE action = $1", marker)
        assert [row["action"] for row in rows] == [marker]
        assert (await driver.fetchrow(session, "SELECT action FROM audit_event WHERE action = $1", "absent")) is None


async def test_a_driver_statement_runs_inside_a_transaction_it_begins(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        # the first statement of the session: the driver sends the BEGIN SQLAlchemy would have sent
        first = await driver.fetchval(session, "SELECT txid_current()")
        assert await driver.fetchval(session, "SELECT txid_current()") == first  # the same transaction
        await session.rollback()


async def test_failures_are_sqlalchemy_errors_with_their_sqlstate(session_factory: async_sessionmaker[AsyncSession]) -> None:
    async with session_factory() as session:
        with pytest.raises(DBAPIError) as raised:
            await driver.execute(session, "SELECT 1 / $1::int", 0)
        assert getattr(raised.value.orig, "sqlstate", None) == "22012"  # division_by_zero
        await session.rollback()
        assert await driver.fetchval(session, "SELECT 1") == 1  # the session goes on after its rollback


async def test_an_autocommit_session_sends_no_begin(engine: AsyncEngine) -> None:
    factory = make_autocommit_session_factory(engine)
    async with factory() as session:
        first = await driver.fetchval(session, "SELECT txid_current()")
        assert await driver.fetchval(session, "SELECT txid_current()") != first  # each statement its own transaction
