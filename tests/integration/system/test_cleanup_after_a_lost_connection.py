"""A request whose database connection is killed mid-transaction answers the first error, not a 500 from the
cleanup: the rollback in provide_db_session fails too ("connection was closed in the middle of operation"),
and raised from a dependency's cleanup it became an ExceptionGroup (seen once in CI under a restart)."""

from __future__ import annotations

import pytest
from litestar.datastructures import State
from sqlalchemy import text

from telehealth.db import driver
from telehealth.db.engine import make_engine, make_request_session_factory, provide_db_session


@pytest.mark.parametrize("first_statement", ["orm", "driver"])  # the ORM's connection, or the one the driver holds
async def test_a_killed_connection_raises_the_handlers_error_not_the_rollbacks(database_url, engine, first_statement):
    victim_engine = make_engine(database_url, pool_size=1)
    try:
        state = State({"request_session_factory": make_request_session_factory(victim_engine)})
        cleanup = provide_db_session(state, {})  # type: ignore[arg-type]
        session = await cleanup.__anext__()
        if first_statement == "orm":
            pid = await session.scalar(text("SELECT pg_backend_pid()"))
        else:
            pid = await driver.fetchval(session, "SELECT pg_backend_pid()")
        async with engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        handler_error = RuntimeError("the handler failed after the server went away")  # e.g. a timeout, before any query noticed
        with pytest.raises(RuntimeError) as answered:  # the handler's error comes back out; the failed rollback is swallowed
            await cleanup.athrow(handler_error)
        assert answered.value is handler_error
        async with make_request_session_factory(victim_engine)() as again:  # the pool replaced the dead connection
            assert await driver.fetchval(again, "SELECT 1") == 1
            await again.rollback()
    finally:
        await victim_engine.dispose()
