"""A request's session (db/request_connection.py): the driver holds the connection until the ORM needs it, the ORM
then joins that very transaction, and however the request ends the connection goes back to the pool."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached

from telehealth.db import driver
from telehealth.db.engine import end_request_session, make_engine, make_request_session_factory
from telehealth.db.request_connection import OWN_CONNECTION
from telehealth.system.models import RateLimitEvent

INSERT = "INSERT INTO rate_limit_event (bucket, key, occurred_at) VALUES ('probe', $1, now())"
COUNT = "SELECT count(*) FROM rate_limit_event WHERE key = $1"


@pytest.fixture
async def pool_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
def requests(pool_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_request_session_factory(pool_engine)


def checked_out(engine: AsyncEngine) -> int:
    return engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]


async def stored(engine: AsyncEngine, key: str) -> int:
    async with make_request_session_factory(engine)() as reader:
        return int(await driver.fetchval(reader, COUNT, key))


@pytest.mark.parametrize("commit", [True, False])
async def test_a_request_on_the_driver_alone_ends_on_its_connection_and_gives_it_back(
    pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession], commit: bool
) -> None:
    key = uuid.uuid4().hex
    session = requests()
    await driver.execute(session, INSERT, key)
    held = session.info[OWN_CONNECTION]
    assert not held.joined and session.sync_session.get_transaction() is None  # the ORM never began
    assert checked_out(pool_engine) == 1
    await end_request_session(session, commit=commit)
    assert checked_out(pool_engine) == 0 and OWN_CONNECTION not in session.info
    assert await stored(pool_engine, key) == (1 if commit else 0)


@pytest.mark.parametrize("commit", [True, False])
async def test_the_orm_joins_the_drivers_transaction_on_the_same_connection(
    pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession], commit: bool
) -> None:
    key = uuid.uuid4().hex
    session = requests()
    backend = await driver.fetchval(session, "SELECT pg_backend_pid()")
    await driver.execute(session, INSERT, key)
    assert await session.scalar(text("SELECT pg_backend_pid()")) == backend  # the ORM's statement, same connection
    assert await session.scalar(text("SELECT count(*) FROM rate_limit_event WHERE key = :key"), {"key": key}) == 1
    session.add(RateLimitEvent(bucket="probe", key=key, occurred_at=await session.scalar(text("SELECT now()"))))
    assert await driver.fetchval(session, COUNT, key) == 2  # the driver sees what the ORM flushed
    assert session.info[OWN_CONNECTION].joined and checked_out(pool_engine) == 1
    await end_request_session(session, commit=commit)
    assert checked_out(pool_engine) == 0
    assert await stored(pool_engine, key) == (2 if commit else 0)


async def test_a_row_put_in_the_session_keeps_the_request_on_its_connection(
    pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession]
) -> None:
    """A row written on the driver and put in the session as stored (make_transient_to_detached and add, as the
    booking's new appointment is) begins the session's transaction but takes no connection; a row loaded on the
    driver begins none. The statements after either stay on the driver's connection, and the request ends there;
    a change to such a row still reaches the database, through the session."""
    key = uuid.uuid4().hex
    for change in (False, True):
        session = requests()
        inserted = await driver.fetchval(session, INSERT + " RETURNING id", key)
        written = driver.built(RateLimitEvent, {"id": inserted, "bucket": "probe", "key": key, "occurred_at": datetime.now(UTC)})
        make_transient_to_detached(written)
        session.add(written)
        assert session.sync_session.get_transaction() is not None  # Session.add() began it
        assert await driver.load(session, RateLimitEvent, inserted) is written
        assert await driver.fetchval(session, COUNT, key) == 1 + change
        assert not session.info[OWN_CONNECTION].joined  # the ORM has not asked for a connection
        if change:
            written.bucket = "probe-changed"
        await end_request_session(session, commit=True)
        assert checked_out(pool_engine) == 0
    assert await stored(pool_engine, key) == 2
    async with make_request_session_factory(pool_engine)() as reader:
        changed = "SELECT count(*) FROM rate_limit_event WHERE key = $1 AND bucket = 'probe-changed'"
        assert await driver.fetchval(reader, changed, key) == 1
        loaded = await driver.load(reader, RateLimitEvent, inserted)
        assert loaded is not None and reader.sync_session.get_transaction() is None  # loading begins no transaction
        assert await driver.fetchval(reader, COUNT, key) == 2 and not reader.info[OWN_CONNECTION].joined


async def test_pending_orm_changes_are_sent_and_committed_with_the_drivers_statements(
    pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession]
) -> None:
    key = uuid.uuid4().hex
    session = requests()
    await driver.execute(session, INSERT, key)
    session.add(RateLimitEvent(bucket="probe", key=key, occurred_at=await driver.fetchval(session, "SELECT now()")))
    await end_request_session(session, commit=True)  # flushed at the end, in the same transaction
    assert await stored(pool_engine, key) == 2 and checked_out(pool_engine) == 0


async def test_a_commit_in_the_middle_and_statements_after_it_are_all_kept(
    pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession]
) -> None:
    key = uuid.uuid4().hex
    session = requests()
    await driver.execute(session, INSERT, key)
    await session.commit()  # the driver's transaction, though the ORM never began one
    await driver.execute(session, INSERT, key)  # a new transaction on the same connection
    await session.rollback()
    await driver.execute(session, INSERT, key)
    await end_request_session(session, commit=True)
    assert await stored(pool_engine, key) == 2 and checked_out(pool_engine) == 0


async def test_a_session_closed_without_the_request_end_rolls_back_and_gives_the_connection_back(
    pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession]
) -> None:
    key = uuid.uuid4().hex
    async with requests() as session:
        await driver.execute(session, INSERT, key)
    assert checked_out(pool_engine) == 0
    assert await stored(pool_engine, key) == 0


async def test_a_commit_refused_by_the_database_is_sqlalchemys_error_and_the_connection_goes_back(
    pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession]
) -> None:
    session = requests()
    await driver.execute(session, "CREATE TEMP TABLE deferred (x int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP")
    await driver.execute(session, "INSERT INTO deferred VALUES (1), (1)")  # checked only at COMMIT
    with pytest.raises(DBAPIError) as refused:
        await end_request_session(session, commit=True)
    assert getattr(refused.value.orig, "sqlstate", None) == "23505"
    assert checked_out(pool_engine) == 0
    async with requests() as again:  # the connection is usable again, with no transaction left open
        assert await driver.fetchval(again, "SELECT 1") == 1


async def test_a_failed_statement_rolls_back_with_the_request(pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession]) -> None:
    key = uuid.uuid4().hex
    session = requests()
    await driver.execute(session, INSERT, key)
    with pytest.raises(DBAPIError):
        await driver.execute(session, "SELECT 1 / 0")
    await end_request_session(session, commit=False)
    assert checked_out(pool_engine) == 0 and await stored(pool_engine, key) == 0


@pytest.mark.parametrize("orm_joined_first", [False, True])
async def test_a_failure_inside_begin_nested_rolls_back_to_the_savepoint_and_the_request_goes_on(
    pool_engine: AsyncEngine, requests: async_sessionmaker[AsyncSession], orm_joined_first: bool
) -> None:
    """A driver statement inside begin_nested() asks the session for its connection, which is what sends the
    SAVEPOINT (the ORM then joins the request's connection if it had not): a failure inside rolls back to it and the
    request's transaction goes on with what came before (the outbox's requeue relies on it). The held connection
    alone would have sent no SAVEPOINT, and the failure would have aborted the whole transaction."""
    outer, inner, after = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    session = requests()
    await driver.execute(session, INSERT, outer)  # on the driver's own connection
    if orm_joined_first:
        await session.execute(text("SELECT 1"))
        assert session.info[OWN_CONNECTION].joined
    with pytest.raises(DBAPIError):
        async with session.begin_nested():
            await driver.execute(session, INSERT, inner)
            await driver.execute(session, "SELECT 1 / $1::int", 0)
    assert await driver.fetchval(session, COUNT, outer) == 1
    assert await driver.fetchval(session, COUNT, inner) == 0
    async with session.begin_nested():  # a savepoint that succeeds keeps its row
        await driver.execute(session, INSERT, after)
    await end_request_session(session, commit=True)
    assert [await stored(pool_engine, key) for key in (outer, inner, after)] == [1, 0, 1]
    assert checked_out(pool_engine) == 0
