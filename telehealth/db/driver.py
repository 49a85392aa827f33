"""The hottest statements straight on the driver: asyncpg's connection under a session's own transaction.

Every signed-in request resolves its session, and every booking, dashboard and webhook runs a dozen short
statements. Through an AsyncSession each costs the ORM's per-statement work (a greenlet hop, the compiled
cache lookup, the cursor adapter, result and identity-map processing): several times what asyncpg itself
spends (docs/benchmarks.md, "The stack floor"). The statements here are SQL text with `$n` parameters, sent
on the very connection and transaction the session holds, so they see and are seen by the session's own
statements and commit or roll back with them. Nothing here is an ORM object: callers read records.

Failures look like the session's: asyncpg's errors become SQLAlchemy's DBAPIError (the same class SQLAlchemy
would raise, so 503s and constraint codes are handled as before), and a connection lost meanwhile is
invalidated so the pool replaces it.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

Record = Any  # asyncpg.Record: by name (record["id"]) or position


async def _driver(session: AsyncSession) -> tuple[AsyncConnection, Any, Any]:
    """The session's connection, its dialect adapter, and asyncpg's connection, with the transaction begun
    as SQLAlchemy would begin it before its own first statement (not in an autocommit session)."""
    connection = await session.connection()
    fairy = await connection.get_raw_connection()
    adapted: Any = fairy.dbapi_connection  # the dialect's adapter (AsyncAdapt_asyncpg_connection)
    if not adapted.autocommit and adapted._transaction is None:
        await adapted._start_transaction()  # the BEGIN SQLAlchemy's cursor sends before its first statement
    return connection, adapted, fairy.driver_connection


async def _failed(connection: AsyncConnection, adapted: Any, sql: str, args: tuple[Any, ...], error: Exception) -> Exception:
    """What to raise for `error`: a driver error as SQLAlchemy's DBAPIError (with the dialect's DB-API error,
    SQLSTATE and all, as `orig`), anything else (a Python error binding the arguments) as it is."""
    try:
        adapted._handle_exception(error)  # asyncpg's error as the dialect's DB-API error (and forget a dead transaction)
    except Exception as translated:
        dbapi_error: Exception = translated
    else:  # pragma: no cover (the adapter always raises)
        dbapi_error = error
    if not isinstance(dbapi_error, adapted.dbapi.Error):
        return error
    closed = adapted._connection.is_closed()
    if closed:
        await connection.invalidate()
    return cast(DBAPIError, DBAPIError.instance(sql, args, dbapi_error, adapted.dbapi.Error, connection_invalidated=closed))


async def _run(session: AsyncSession, method: str, sql: str, args: tuple[Any, ...]) -> Any:
    connection, adapted, driver = await _driver(session)
    try:
        return await getattr(driver, method)(sql, *args)
    except Exception as error:
        failure = await _failed(connection, adapted, sql, args, error)
        if failure is error:
            raise
        raise failure from error


async def fetch(session: AsyncSession, sql: str, *args: Any) -> list[Record]:
    """Every row of `sql` run with `args` in the session's transaction."""
    rows: list[Record] = await _run(session, "fetch", sql, args)
    return rows


async def fetchrow(session: AsyncSession, sql: str, *args: Any) -> Record | None:
    """The first row of `sql`, or None."""
    row: Record | None = await _run(session, "fetchrow", sql, args)
    return row


async def fetchval(session: AsyncSession, sql: str, *args: Any) -> Any:
    """The first column of the first row of `sql`, or None."""
    return await _run(session, "fetchval", sql, args)


async def execute(session: AsyncSession, sql: str, *args: Any) -> str:
    """Run a statement for its effect; answers PostgreSQL's status ("UPDATE 1")."""
    status: str = await _run(session, "execute", sql, args)
    return status
