"""The async engine, the session factory, and the request-owned transaction."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar.datastructures import State
from litestar.types import Scope
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

from telehealth.db.request_connection import OWN_CONNECTION, RequestConnection, RequestSession

# A connection back in the pool for less than this was working a moment ago: it is used without a ping.
IDLE_BEFORE_PING_SECONDS = 5.0


def async_database_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and use asyncpg underneath."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://...)")


def make_engine(url: str, *, pool_size: int = 15, transaction_pooling: bool = False) -> AsyncEngine:
    """A fixed pool (no overflow): connections are kept, never opened and closed per burst, so each keeps
    its prepared statements. A burst beyond `pool_size` waits up to 5 s for a connection (then 503).

    `transaction_pooling`: behind PgBouncer in transaction mode, where each transaction may run on another
    server connection, a prepared statement must not outlive its transaction: no statement caches (asyncpg's,
    SQLAlchemy's), and a fresh name for each statement so two clients sharing a server connection never
    collide on asyncpg's numbered names ("prepared statement __asyncpg_stmt_1__ already exists")."""
    connect_args: dict[str, Any] = {"timeout": 5, "server_settings": {"application_name": "telehealth"}}
    if transaction_pooling:
        connect_args |= {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4()}__",
        }
    engine = create_async_engine(
        async_database_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=5,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine.pool, "connect", _note_idle_from)
    event.listen(engine.sync_engine.pool, "checkin", _note_idle_from)
    event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


def _note_idle_from(dbapi_connection: Any, record: Any) -> None:
    record.info["idle_from"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Ping a connection that has sat in the pool (a restarted PostgreSQL left it dead): the pool then
    replaces it instead of a request failing. pool_pre_ping would ping every checkout, three round trips
    (BEGIN, an empty query, ROLLBACK) on every request. A connection that died while busy fails its
    request with 503, and SQLAlchemy then replaces every older connection of the pool."""
    if time.monotonic() - record.info.get("idle_from", 0.0) < IDLE_BEFORE_PING_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:  # the pool retries the checkout with a new connection
        raise DisconnectionError(str(error)) from error


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def make_request_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Requests' sessions (db/request_connection.py): the driver holds the connection until the ORM needs it, and
    the ORM then takes the transaction over on that very connection."""
    return async_sessionmaker(
        engine, class_=AsyncSession, sync_session_class=RequestSession, expire_on_commit=False, join_transaction_mode="control_fully"
    )


def make_autocommit_session_factory(engine: AsyncEngine, *, transaction_pooling: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions whose every statement commits by itself, with no BEGIN or COMMIT around it: for a lookup
    of one row (and at most one single-statement write) outside the request's transaction. Callers end with
    `commit()` (nothing to do in autocommit).

    Behind PgBouncer in transaction mode a statement outside a transaction is two exchanges (prepare, then
    execute) that PgBouncer may send to two server connections, so there the sessions use transactions."""
    if transaction_pooling:
        return make_session_factory(engine)
    return async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work outside a request (CLI, worker): commit on success, roll back on error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope key: the request's session, opened by a middleware before the handler (accounts/middleware.py reads the
# session cookie in it); provide_db_session takes it over, and the middleware ends it only if no handler did.
OPENED_SESSION = "telehealth.opened_session"


async def provide_db_session(state: State, scope: Scope) -> AsyncGenerator[AsyncSession, None]:
    """The request owns the transaction: services never commit; this commits after the handler succeeds.

    Litestar runs the code after `yield` once the response is built and before it is sent, so a failed
    commit still becomes an error response rather than a success that was never stored.
    """
    from telehealth.lib.errors import DomainError

    session: AsyncSession = scope.pop(OPENED_SESSION, None) or state.request_session_factory()  # type: ignore[misc]
    try:
        yield session
    except DomainError as refusal:
        await asyncio.shield(end_request_session(session, commit=refusal.keep_evidence))
        raise
    except BaseException:
        await asyncio.shield(end_request_session(session, commit=False))
        raise
    await end_request_session(session, commit=True)


async def end_opened_session(scope: Scope, *, failed: bool) -> None:
    """The middleware's end of a session no handler took over: its statements (the session cookie's lookup and
    touch) committed, or rolled back after a failure."""
    session: AsyncSession | None = scope.pop(OPENED_SESSION, None)  # type: ignore[misc]
    if session is not None:
        await end_request_session(session, commit=not failed)


async def end_request_session(session: AsyncSession, *, commit: bool) -> None:
    """Commit (or roll back) a request's transaction and close its session; its connection goes back to the pool.
    A rollback that fails (the database went away) is not raised: the error that led to it is the one to answer.

    A session whose ORM never needed the connection and has nothing to send (db/request_connection.py) ends on the
    driver's connection; any other ends through the session, in one pass into SQLAlchemy's synchronous side (a
    greenlet each for commit and close cost every request 75 us of CPU)."""
    sync = session.sync_session
    held: RequestConnection | None = sync.info.get(OWN_CONNECTION)
    if held is None or held.joined or (commit and not sync._is_clean()):
        await greenlet_spawn(_commit_and_close if commit else _roll_back_and_close, sync)
        return
    del sync.info[OWN_CONNECTION]
    try:
        await (held.commit() if commit else held.rollback())
    finally:
        sync.close()  # no transaction and no connection of its own: nothing to send
        await held.release()


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


def _roll_back_and_close(session: Session) -> None:
    """When the failure was the database going away, the rollback fails too ("connection was closed in the
    middle of operation"); raised from the dependency's cleanup it became an ExceptionGroup and a 500. The
    first error is the one to answer (a 503); a connection that cannot roll back is discarded by the pool."""
    try:
        session.rollback()
    except DBAPIError:
        pass
    finally:
        session.close()
