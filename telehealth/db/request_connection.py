"""The request's connection, held by the driver until the ORM needs it.

A request whose statements all run on the driver (db/driver.py: the position lookup, the dashboard, a booking) needs
none of the ORM session's machinery to begin and end its transaction: a connection from SQLAlchemy's pool, BEGIN and
COMMIT on the dialect's adapter, the connection back. Through the session the same cost about 120 us more CPU per
request (docs/benchmarks.md, the seventh session). So the request's session (RequestSession) starts without a
connection; its first driver statement checks one out of the pool and begins there (RequestConnection). When the
session's ORM then needs a connection (a flush, a query, a savepoint), its bind is a SQLAlchemy Connection made on
that very pool connection and transaction, and the session takes the transaction over (join_transaction_mode
"control_fully": its commit is the transaction's). ORM and driver statements stay one transaction either way.

A request ends through db/engine.py's end_request_session: committed or rolled back through the session when its ORM
joined, else on the adapter, and the connection goes back to the pool. Sessions of the worker, the CLI and the tests'
own factories are plain sessions: the driver asks them for their connection as before.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

OWN_CONNECTION = "telehealth.db.request_connection"  # session.info key: the RequestConnection of a RequestSession


class RequestConnection:
    """A pool connection a request session's driver statements hold, with the dialect's adapter (which tracks the
    transaction) and asyncpg's connection; `orm` is the SQLAlchemy Connection the session's ORM uses on it, once made."""

    __slots__ = ("adapted", "fairy", "orm", "raw")

    def __init__(self, fairy: Any) -> None:
        self.fairy = fairy  # the pool's proxy (_ConnectionFairy): closing it checks the connection in
        self.adapted = fairy.dbapi_connection  # AsyncAdapt_asyncpg_connection
        self.raw = fairy.driver_connection  # asyncpg.Connection
        self.orm: Connection | None = None

    @classmethod
    async def check_out(cls, session: Session) -> RequestConnection:
        """A connection from the session's engine's pool (the pool's checkout events run: a connection idle for a
        while is pinged first), kept in the session's info."""
        engine = session.bind
        assert isinstance(engine, Engine), "a request session is bound to the engine"
        try:
            fairy = await greenlet_spawn(engine.pool.connect)
        except engine.dialect.loaded_dbapi.Error as error:  # the database is away or starting: a 503, as from the session
            Connection._handle_dbapi_exception_noconnection(error, engine.dialect, engine)
            raise  # pragma: no cover (the line above raises SQLAlchemy's error)
        held = cls(fairy)
        session.info[OWN_CONNECTION] = held
        return held

    def orm_connection(self, engine: Engine) -> Connection:
        if self.orm is None:
            self.orm = Connection(engine, connection=self.fairy)
        return self.orm

    @property
    def joined(self) -> bool:
        """Whether the session's ORM has used the connection: then the session ends the transaction."""
        return self.orm is not None

    @property
    def _open_transaction(self) -> bool:
        """Whether a statement began a transaction on the adapter that has not ended (none on a discarded connection)."""
        return self.fairy.dbapi_connection is not None and self.adapted._transaction is not None

    async def commit(self) -> None:
        """COMMIT on the adapter (nothing when no statement began a transaction); a failure is SQLAlchemy's
        DBAPIError, as through the session."""
        if self._open_transaction:
            try:
                await self.adapted._call_and_discard(self.adapted._transaction.commit)
            except Exception as error:
                raise dbapi_error_for(self.adapted, "COMMIT", (), error) from error

    async def rollback(self) -> None:
        """ROLLBACK on the adapter; a failure (the database went away) is not raised: the error that led here is
        the one to answer, and release() discards the connection."""
        if self._open_transaction:
            try:
                await self.adapted._call_and_discard(self.adapted._transaction.rollback)
            except Exception:  # the connection is lost: release() discards it
                pass

    async def invalidate(self) -> None:
        """Discard the connection (the database dropped it): the pool opens a new one in its place."""
        if self.fairy.dbapi_connection is not None:
            await greenlet_spawn(self.fairy.invalidate)

    async def release(self) -> None:
        """release_in_session() from outside the greenlet: with no transaction left, no ORM Connection and the
        connection alive, the pool's check-in sends nothing, so it needs no greenlet pass."""
        if self.fairy.dbapi_connection is None:  # already discarded
            return
        if self.orm is None and self.adapted._transaction is None and not self.adapted._connection.is_closed():
            self.fairy.close()
            return
        await greenlet_spawn(self.release_in_session)

    # Inside SQLAlchemy's greenlet (RequestSession's commit, rollback and close), where the adapter may await.

    def end_in_session(self, *, commit: bool) -> None:
        """End what the driver began on the adapter after the session's own transaction ended (or without one); a
        failed COMMIT raises as commit() does, a failed ROLLBACK is left to release_in_session()."""
        if not self._open_transaction:
            return
        try:
            self.adapted.commit() if commit else self.adapted.rollback()
        except Exception as error:
            if commit:
                raise dbapi_error_for(self.adapted, "COMMIT", (), error) from error

    def release_in_session(self) -> None:
        """Give the connection back to the pool (rolling back what is left open), or discard it when the database
        dropped it."""
        if self.fairy.dbapi_connection is None:  # already discarded
            return
        if self.adapted._connection.is_closed():
            self.fairy.invalidate()
            return
        self.end_in_session(commit=False)
        (self.fairy if self.orm is None else self.orm).close()  # the session's Connection on it, if made, gives it back


def dbapi_error_for(adapted: Any, sql: str, args: tuple[Any, ...], error: Exception) -> Exception:
    """asyncpg's `error` as SQLAlchemy would raise it: DBAPIError with the dialect's DB-API error (SQLSTATE and all)
    as `orig`, and whether the connection is lost; anything that is no database error (a Python error binding the
    arguments) as it is."""
    try:
        adapted._handle_exception(error)  # asyncpg's error as the dialect's DB-API error (and forget a dead transaction)
    except Exception as translated:
        dbapi_error: Exception = translated
    else:  # pragma: no cover (the adapter always raises)
        dbapi_error = error
    if not isinstance(dbapi_error, adapted.dbapi.Error):
        return error
    closed = adapted._connection.is_closed()
    return cast(DBAPIError, DBAPIError.instance(sql, args, dbapi_error, adapted.dbapi.Error, connection_invalidated=closed))


class RequestSession(Session):
    """The request's session (module docstring): until its ORM needs a connection, the driver holds one of its own;
    then the ORM's bind is a Connection on that one. Its commit, rollback and close end what the driver began too,
    and close gives the connection back."""

    def get_bind(self, mapper: Any = None, **kw: Any) -> Any:
        held: RequestConnection | None = self.info.get(OWN_CONNECTION)
        if held is None or kw.get("bind") is not None:
            return super().get_bind(mapper, **kw)
        engine = super().get_bind(mapper, **kw)
        assert isinstance(engine, Engine), "a request session is bound to the engine"
        return held.orm_connection(engine)

    def commit(self) -> None:
        super().commit()
        if (held := self.info.get(OWN_CONNECTION)) is not None:
            held.end_in_session(commit=True)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            if (held := self.info.get(OWN_CONNECTION)) is not None:
                held.end_in_session(commit=False)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if (held := self.info.pop(OWN_CONNECTION, None)) is not None:
                held.release_in_session()
