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

Callers write SQL text (`$n` parameters, arguments in UTC through `utc()`) and, where a statement's rule is a
SQLAlchemy expression other queries share, compile it once at import (`compiled()`) rather than copy it. Every
statement first sends the session's pending ORM changes, as the session's autoflush does, so a driver statement
sees what the caller added and statements keep their order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import inspect
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_state, manager_of_class, set_committed_value
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ColumnElement
from sqlalchemy.types import ARRAY, TypeEngine

from telehealth.db.request_connection import OWN_CONNECTION, RequestConnection, RequestSession, dbapi_error_for
from telehealth.db.types import UTCDateTime

Record = Any  # asyncpg.Record: by name (record["id"]) or position
Loaded = TypeVar("Loaded")
DIALECT = asyncpg_dialect()  # compiles statements as the engine would (compiled(); status_swap.py)


_HELD = "telehealth.db.driver"  # session.info key: the connection held for the session's current transaction
_SAVEPOINTS = "telehealth.db.driver.savepoints"  # session.info key: how many of savepoint()'s are open


def _innermost(session: AsyncSession) -> Any:
    """The session's savepoint in progress, or else its transaction (None outside one)."""
    sync = session.sync_session
    return sync.get_nested_transaction() or sync.get_transaction()


async def _driver(session: AsyncSession) -> tuple[Callable[[], Awaitable[None]], Any, Any]:
    """How to discard the connection (it was lost), its dialect adapter, and asyncpg's connection.

    A request's session (db/request_connection.py) whose ORM has no connection yet runs on the pool connection the
    driver holds for it. Otherwise the session's connection, kept in session.info for the session's current
    transaction: asking the session again (two greenlet hops) was half of a statement's cost here. A new transaction
    (after a commit or rollback), a failure, and entering or leaving a nested one (`begin_nested()`) ask again:
    asking is what makes SQLAlchemy send the SAVEPOINT, so a failure inside rolls back to it and leaves the
    transaction usable, as for the session's own statements."""
    sync = session.sync_session
    own: RequestConnection | None = sync.info.get(OWN_CONNECTION)
    nested = sync.get_nested_transaction()
    if own is not None and own.orm is None and nested is None:
        # A request's connection the ORM has not joined (its get_bind would have: RequestSession), outside any
        # savepoint: every statement so far ran here. The common case, asked first.
        return own.invalidate, own.adapted, own.raw
    transaction = nested or sync.get_transaction()
    held = session.info.get(_HELD)
    if held is not None and transaction is not None and held[0] is transaction and transaction.is_active:
        _, invalidate, adapted, raw = held
        return invalidate, adapted, raw
    if isinstance(sync, RequestSession) and nested is None and (transaction is None or not transaction._connections):
        # No transaction, or one the session began without a connection yet: Session.add() begins one (a row
        # loaded on the driver is added to the session), and only a flush or a query makes it take a connection.
        # Inside begin_nested() the session is asked instead: asking is what sends the SAVEPOINT.
        own = own or await RequestConnection.check_out(sync)
        return own.invalidate, own.adapted, own.raw
    connection = await session.connection()
    fairy = await connection.get_raw_connection()
    adapted = fairy.dbapi_connection  # the dialect's adapter (AsyncAdapt_asyncpg_connection)
    raw = fairy.driver_connection
    session.info[_HELD] = (_innermost(session), connection.invalidate, adapted, raw)
    return connection.invalidate, adapted, raw


async def _failed(invalidate: Callable[[], Awaitable[None]], adapted: Any, sql: str, args: tuple[Any, ...], error: Exception) -> Exception:
    """What to raise for `error`: a driver error as SQLAlchemy's DBAPIError (with the dialect's DB-API error,
    SQLSTATE and all, as `orig`), anything else (a Python error binding the arguments) as it is."""
    failure = dbapi_error_for(adapted, sql, args, error)
    if isinstance(failure, DBAPIError) and failure.connection_invalidated:
        await invalidate()
    return failure


async def _run(session: AsyncSession, method: str, sql: str, args: tuple[Any, ...]) -> Any:
    await _flush_pending(session)
    invalidate, adapted, driver = await _driver(session)
    try:
        if not adapted.autocommit and adapted._transaction is None:
            # The BEGIN SQLAlchemy's cursor sends before its first statement (none in an autocommit session). Inside
            # the try: on a connection the database dropped (a restart) it is the first thing to fail, as a 503.
            await adapted._start_transaction()
        return await getattr(driver, method)(sql, *args)
    except Exception as error:
        session.info.pop(_HELD, None)  # the next statement asks the session afresh, as before any failure
        failure = await _failed(invalidate, adapted, sql, args, error)
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


def loaded(session: AsyncSession, model: type[Loaded], record: Record, *, fresh: bool = False) -> Loaded:
    """An ORM object for a row the driver read (every column of `model`, by name), in the session as if the ORM had
    loaded it: persistent, unchanged, so later ORM work on it (a change, a refresh) goes as usual. When the session
    already holds that row, its own object, as a load would answer: left as it is, or with `fresh` given the row's
    values (the ORM's populate_existing)."""
    mapper = _readable(model)
    key = mapper.identity_key_from_primary_key([record[mapper.get_property_by_column(column).key] for column in mapper.primary_key])
    held = session.sync_session.identity_map.get(key)
    if held is not None:
        if fresh:
            _stored(held, record)
        return cast(Loaded, held)
    instance = built(model, record)
    _as_loaded(session.sync_session, instance, key)
    return instance


def as_stored(session: AsyncSession, instance: Any) -> None:
    """An object made by built() whose row a driver statement has just written, put in the session as that row (as
    if loaded: persistent, unchanged), so no SELECT loads it back. make_transient_to_detached() and Session.add()
    did the same with the extra passes _as_loaded() explains."""
    state = instance_state(instance)
    if state.key is not None or state.session_id is not None or state.modified:
        raise ValueError("as_stored() takes an object built() and not yet in a session")
    _as_loaded(session.sync_session, instance, state.mapper.identity_key_from_instance(instance))


def _as_loaded(sync: Any, instance: Any, key: Any) -> None:
    """In the session's identity map the way SQLAlchemy's loading puts a row it read (orm/loading.py,
    `_instance`): the identity key, the session's id, the map. make_transient_to_detached() and Session.add()
    reach the same state with a committed-state pass, a cascade walk and attach events (about 40 us a row; the
    app listens to no ORM event). The dict was filled directly, so there is nothing to commit, and no transaction
    begins: reading a row begins none."""
    state = instance_state(instance)
    state.key, state.identity_token = key, key[2]
    state.session_id = sync.hash_key
    sync.identity_map._add_unpresent(state, key)


def built(model: type[Loaded], values: Mapping[str, Any] | Record) -> Loaded:
    """An object of `model` holding `values` (by attribute name) and the model's defaults for its other columns, built
    as the ORM builds an object it loads: the class's own `__new__`, the values put in place. SQLModel's constructor
    sets each field through the ORM's attribute events, 40-50 us more per object (docs/benchmarks.md, the seventh
    session). A table model's constructor validates nothing either; the object is transient until added. A name
    that is not a column is refused, and so is a column with no default left out (the constructor would leave it
    unset, and reading it would then try to load it)."""
    defaults = _defaults(model)
    unknown = values.keys() - defaults.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no column {sorted(unknown)}")
    instance: Loaded = manager_of_class(model).new_instance()
    state = instance.__dict__  # what the ORM's instrumented attributes read
    for name, default in defaults.items():
        if name in values:
            state[name] = values[name]
        elif default is _REQUIRED:
            raise TypeError(f"{model.__name__}.{name} is required")
        else:
            state[name] = default() if callable(default) else default
    return instance


_REQUIRED = object()
_IMMUTABLE = (type(None), bool, int, float, str, bytes)
_DEFAULTS: dict[type[Any], dict[str, Any]] = {}


def _defaults(model: type[Any]) -> dict[str, Any]:
    """Each column's default as built() uses it, once per model: the value itself when immutable, else something to
    call for a fresh one (a default_factory, or pydantic's copy of a mutable default), or _REQUIRED."""
    found = _DEFAULTS.get(model)
    if found is None:
        found = {}
        for prop in inspect(model).column_attrs:
            field = model.model_fields[prop.key]
            if field.default_factory is not None:
                found[prop.key] = field.default_factory
            elif field.is_required():
                found[prop.key] = _REQUIRED
            elif isinstance(field.default, _IMMUTABLE):
                found[prop.key] = field.default
            else:
                found[prop.key] = lambda field=field: field.get_default(call_default_factory=True)
        _DEFAULTS[model] = found
    return found


async def load(session: AsyncSession, model: type[Loaded], key: Any, *, by: str | None = None, for_update: bool = False) -> Loaded | None:
    """session.get(model, key) on the driver, or with `by` the row whose unique column of that name holds `key`;
    locked with `for_update` and then always read afresh (as with populate_existing: a lock is taken to read the
    row as it is now); None when there is no such row."""
    record = await fetchrow(session, _select_by(model, by, for_update), key)
    return None if record is None else loaded(session, model, record, fresh=for_update)


async def refresh(session: AsyncSession, instance: Any) -> None:
    """session.refresh(instance) on the driver: every column read again, the object left unchanged (not dirty)."""
    mapper = inspect(type(instance))
    record = await fetchrow(session, _select_by(type(instance), None, False), *mapper.primary_key_from_instance(instance))
    if record is None:
        raise LookupError(f"{mapper.class_.__name__} {mapper.primary_key_from_instance(instance)} is gone")
    _stored(instance, record)


def stored(instance: Any, **values: Any) -> None:
    """Tell the session that `instance`'s row now holds these values (written by a driver statement): set, and
    not changes of the object's own to write back."""
    for name, value in values.items():
        set_committed_value(instance, name, value)


def _stored(instance: Any, record: Record) -> None:
    stored(instance, **dict(record.items()))


_READABLE: dict[type[Any], Any] = {}  # model -> its mapper, once checked


def _readable(model: type[Any]) -> Any:
    """The model's mapper, once it is known that asyncpg's values are the ORM's for every column (checked once per
    model): refused when one needs the dialect's conversion on the way out (UTCDateTime's is not: asyncpg answers
    timestamptz in UTC)."""
    mapper = _READABLE.get(model)
    if mapper is None:
        mapper = inspect(model)
        for prop in mapper.column_attrs:
            kind = prop.columns[0].type
            if not isinstance(kind, UTCDateTime) and kind.dialect_impl(DIALECT).result_processor(DIALECT, None) is not None:
                raise ValueError(f"{model.__name__}.{prop.key} needs the dialect's conversion: load it through the ORM")
        _READABLE[model] = mapper
    return mapper


def columns_of(model: type[Any]) -> str:
    """Every column of the model's table for a SELECT, each under its attribute's name: what loaded() reads."""
    return ", ".join(f'"{prop.columns[0].name}" AS "{prop.key}"' for prop in _readable(model).column_attrs)


_BY: dict[tuple[type[Any], str | None, bool], str] = {}


def _select_by(model: type[Any], by: str | None, for_update: bool) -> str:
    """SELECT every column of one row: by the one-column primary key, or by the unique column `by` (made once)."""
    sql = _BY.get((model, by, for_update))
    if sql is None:
        mapper = _readable(model)
        if by is None:
            (column,) = mapper.local_table.primary_key.columns
        else:
            column = mapper.get_property(by).columns[0]
            if not (column.unique or column.primary_key):
                raise ValueError(f"{model.__name__}.{by} is not unique: load() answers one row")
        sql = f'SELECT {columns_of(model)} FROM "{mapper.local_table.name}" WHERE "{column.name}" = $1'
        sql += " FOR UPDATE" if for_update else ""
        _BY[(model, by, for_update)] = sql
    return sql


def utc(moment: datetime) -> datetime:
    """A timestamptz argument in UTC; a naive datetime is refused, as the ORM's UTCDateTime refuses it."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; attach a time zone first")
    return moment.astimezone(UTC)


def bind_converter(column: ColumnElement[Any]) -> Callable[[Any], Any] | None:
    """How a value for `column` goes to asyncpg: as it is, or in UTC for a UTCDateTime (a naive one refused, as
    the type refuses it); None when the column's type converts its value otherwise (JSON, a boolean), so the
    statement that writes it stays SQLAlchemy's and no value is sent unconverted."""
    if isinstance(column.type, UTCDateTime):
        return _utc_or_none
    if column.type.dialect_impl(DIALECT).bind_processor(DIALECT) is None:
        return _as_is
    return None


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def _as_is(value: Any) -> Any:
    return value


async def _flush_pending(session: AsyncSession) -> None:
    """Send the caller's pending ORM changes before every statement, as the session's autoflush does, so
    statements keep their order and a driver statement sees what the caller added; nothing to send, no hop."""
    if not session.sync_session._is_clean():
        if session.info.get(_SAVEPOINTS):
            raise RuntimeError("ORM changes inside driver.savepoint(): the session would not know they were rolled back")
        await session.flush()


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """SAVEPOINT, then RELEASE, or ROLLBACK TO it when the block fails: for a block of driver statements (or Core
    statements that change no ORM object) that may fail and be tried again, as the booking's INSERT is. SQLAlchemy's
    begin_nested() does the same through the session's greenlets and asks for the connection again entering and
    leaving it. The session's pending ORM changes are sent before the SAVEPOINT; one made inside is refused, as the
    ORM would not know its row was rolled back."""
    await execute(session, "SAVEPOINT driver_savepoint")
    session.info[_SAVEPOINTS] = session.info.get(_SAVEPOINTS, 0) + 1
    try:
        yield
    except BaseException:
        session.info[_SAVEPOINTS] -= 1
        await execute(session, "ROLLBACK TO SAVEPOINT driver_savepoint")
        raise
    session.info[_SAVEPOINTS] -= 1
    await execute(session, "RELEASE SAVEPOINT driver_savepoint")


def _converts(kind: TypeEngine[Any]) -> bool:
    """Whether a value of this type goes to asyncpg otherwise than as it is (an array: whether its items do; its
    own conversion only makes a list of a tuple, which asyncpg takes as it is)."""
    impl = kind.dialect_impl(DIALECT)
    if isinstance(impl, ARRAY):
        return _converts(impl.item_type)
    return impl.bind_processor(DIALECT) is not None


@dataclass(frozen=True)
class CompiledStatement:
    """A SQLAlchemy Core statement compiled once, when its module is imported: the `$n` SQL text and the names
    of its parameters in order, with the values the statement carries itself (literals bound by the ORM)."""

    sql: str
    names: tuple[str, ...]
    carried: Mapping[str, Any]  # every parameter but the caller's (a bindparam without a value)

    def args(self, **values: Any) -> tuple[Any, ...]:
        """The statement's arguments in order: `values` for the caller's parameters, its own for the rest."""
        if values.keys() != set(self.names) - self.carried.keys():
            raise TypeError(f"the statement takes {sorted(set(self.names) - self.carried.keys())}, given {sorted(values)}")
        return tuple(values[name] if name in values else self.carried[name] for name in self.names)


def compiled(statement: ClauseElement, *, columns: tuple[str, ...] | None = None) -> CompiledStatement:
    """For a statement whose rule lives in SQLAlchemy expressions shared with other queries (so the rule has one
    source), built once instead of on every request. Refused when a parameter needs the dialect's conversion on
    the way in (a TypeDecorator such as UTCDateTime, an expanding IN): the driver would send the raw value; with
    `columns`, when the statement does not answer those columns in that order (a record type's fields), or one of
    them needs the dialect's conversion on the way out (its raw value would be read)."""
    result = cast(SQLCompiler, statement.compile(dialect=DIALECT))
    if any(_converts(bind.type) for bind in result.binds.values()) or result.literal_execute_params or result.post_compile_params:
        raise ValueError("the statement has parameters the driver cannot bind as they are (a type conversion or an expanding IN)")
    if columns is not None:
        answered = tuple(column[0] for column in result._result_columns)
        if answered != columns:
            raise ValueError(f"the statement answers {answered}, not {columns}")
        if any(column[3].dialect_impl(DIALECT).result_processor(DIALECT, None) is not None for column in result._result_columns):
            raise ValueError("a column of the statement needs the dialect's conversion on the way out")
    callers = {bind.key for bind in result.binds.values() if bind.required}
    return CompiledStatement(result.string, tuple(result.positiontup or ()), {k: v for k, v in result.params.items() if k not in callers})
