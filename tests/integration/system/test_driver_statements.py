"""db/driver.py: statements on asyncpg's connection belong to the session's own transaction, and fail as
SQLAlchemy's would (DBAPIError with the SQLSTATE), so callers and error handlers see no difference."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Date, String, bindparam, inspect, literal, literal_column, select, text
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


async def test_a_failure_inside_a_savepoint_rolls_back_to_it(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """begin_nested(): the driver's first statement inside it has SQLAlchemy send the SAVEPOINT (the booking's
    INSERT and its deadlock retry rely on it), so a failure there leaves the transaction usable."""
    outer, inner = f"driver.{uuid.uuid4().hex[:8]}", f"driver.{uuid.uuid4().hex[:8]}"
    async with session_factory() as session:
        await driver.execute(session, _INSERT, outer)
        with pytest.raises(DBAPIError):
            async with session.begin_nested():
                await driver.execute(session, _INSERT, inner)
                await driver.execute(session, "SELECT 1 / $1::int", 0)
        assert await driver.fetchval(session, _COUNT, outer) == 1  # the transaction goes on, the outer row in it
        assert await driver.fetchval(session, _COUNT, inner) == 0  # the savepoint's row rolled back
        async with session.begin_nested():  # and a savepoint that succeeds keeps its row
            await driver.execute(session, _INSERT, inner)
        assert await driver.fetchval(session, _COUNT, inner) == 1
        await session.rollback()


async def test_the_drivers_savepoint_rolls_back_to_itself_and_keeps_what_succeeds(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """driver.savepoint(): the booking's INSERT and its deadlock retry; a failure inside leaves the transaction
    usable with everything before it, nested ones unwind to their own, and a block that succeeds keeps its rows."""
    outer, inner, nested = (f"driver.{uuid.uuid4().hex[:8]}" for _ in range(3))
    async with session_factory() as session:
        await driver.execute(session, _INSERT, outer)
        with pytest.raises(DBAPIError):
            async with driver.savepoint(session):
                await driver.execute(session, _INSERT, inner)
                await driver.execute(session, "SELECT 1 / $1::int", 0)
        assert await driver.fetchval(session, _COUNT, outer) == 1
        assert await driver.fetchval(session, _COUNT, inner) == 0
        async with driver.savepoint(session):
            await driver.execute(session, _INSERT, inner)
            with pytest.raises(DBAPIError):
                async with driver.savepoint(session):
                    await driver.execute(session, _INSERT, nested)
                    await driver.execute(session, "SELECT 1 / $1::int", 0)
        assert [await driver.fetchval(session, _COUNT, marker) for marker in (outer, inner, nested)] == [1, 1, 0]
        await session.rollback()


async def test_the_drivers_savepoint_sends_pending_orm_changes_first_and_refuses_them_inside(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    from telehealth.system.models import RateLimitEvent

    key = f"driver-{uuid.uuid4().hex[:8]}"
    count = "SELECT count(*) FROM rate_limit_event WHERE key = $1"
    async with session_factory() as session:
        now = datetime.now(UTC)
        session.add(RateLimitEvent(bucket="probe", key=key, occurred_at=now))  # pending: sent before the SAVEPOINT
        with pytest.raises(DBAPIError):
            async with driver.savepoint(session):
                await driver.execute(session, "SELECT 1 / $1::int", 0)
        assert await driver.fetchval(session, count, key) == 1  # not rolled back with the savepoint
        with pytest.raises(RuntimeError):
            async with driver.savepoint(session):
                session.add(RateLimitEvent(bucket="probe", key=key, occurred_at=now))
                await driver.execute(session, "SELECT 1")
        session.expunge_all()
        assert await driver.fetchval(session, count, key) == 1
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


async def test_a_new_transaction_after_commit_gets_its_own_begin(session_factory: async_sessionmaker[AsyncSession]) -> None:
    # the driver keeps the session's connection for its transaction: after a commit it must ask again (and BEGIN)
    async with session_factory() as session:
        first = await driver.fetchval(session, "SELECT txid_current()")
        await session.commit()
        second = await driver.fetchval(session, "SELECT txid_current()")
        assert second != first
        assert await driver.fetchval(session, "SELECT txid_current()") == second
        await session.rollback()


async def test_pending_orm_changes_are_flushed_before_a_driver_statement_reads(session_factory: async_sessionmaker[AsyncSession]) -> None:
    from telehealth.system.models import RateLimitEvent
    from telehealth.system.rate_limit import count_recent

    key = f"driver-{uuid.uuid4().hex[:8]}"
    async with session_factory() as session:
        now = datetime.now(UTC)
        session.add(RateLimitEvent(bucket="probe", key=key, occurred_at=now))  # pending, not yet sent
        assert await count_recent(session, bucket="probe", key=key, window=timedelta(minutes=1), now=now) == 1
        assert await count_recent(session, bucket="probe", key=key, window=timedelta(minutes=1), now=now) == 1  # nothing pending now
        await session.rollback()


def test_a_compiled_statement_binds_the_callers_values_and_its_own_in_order() -> None:
    statement = select(literal_column("1")).where(
        bindparam("state", type_=String) == literal("CA"),
        bindparam("on", type_=Date) >= literal(date(2026, 1, 1)),
        bindparam("state", type_=String) != "",
    )
    compiled = driver.compiled(statement)
    assert compiled.sql.count("$1::") == 2 and len(compiled.names) == 5  # a name used twice is one parameter
    args = compiled.args(state="NY", on=date(2026, 12, 7))
    assert [args[compiled.names.index(name)] for name in ("state", "on")] == ["NY", date(2026, 12, 7)]
    assert "CA" in args and date(2026, 1, 1) in args  # the statement's own literals
    with pytest.raises(TypeError):
        compiled.args(state="NY")  # a parameter missing
    with pytest.raises(TypeError):
        compiled.args(state="NY", on=date(2026, 12, 7), extra=1)


def test_a_statement_whose_parameter_needs_conversion_is_refused() -> None:
    from telehealth.db.types import UTCDateTime

    with pytest.raises(ValueError):
        driver.compiled(select(literal_column("1")).where(bindparam("at", type_=UTCDateTime) > literal_column("now()")))


async def test_a_connection_lost_before_the_begin_fails_as_sqlalchemys_error(session_factory: async_sessionmaker[AsyncSession]) -> None:
    # A restarted database: the BEGIN the driver sends first is what fails; it must come back as DBAPIError (a 503),
    # never the dialect's bare error (a 500), and the connection is invalidated so the pool replaces it.
    async with session_factory() as session:
        connection = await session.connection()
        (await connection.get_raw_connection()).driver_connection.terminate()
        with pytest.raises(DBAPIError) as raised:
            await driver.fetchval(session, "SELECT 1")
        assert raised.value.connection_invalidated
        await session.rollback()
        assert await driver.fetchval(session, "SELECT 1") == 1  # a fresh connection from the pool


def test_a_compiled_statement_must_answer_the_record_types_columns_in_order() -> None:
    from sqlalchemy import ARRAY, Uuid, any_, column

    statement = select(literal_column("1").label("a"), literal_column("2").label("b"))
    assert driver.compiled(statement, columns=("a", "b")).sql
    with pytest.raises(ValueError):
        driver.compiled(statement, columns=("b", "a"))
    ids = select(literal_column("1").label("a")).where(column("id") == any_(bindparam("ids", type_=ARRAY(Uuid()))))
    assert driver.compiled(ids).names == ("ids",)  # a list of uuids goes to asyncpg as it is


def test_an_array_whose_items_need_conversion_is_refused() -> None:
    from sqlalchemy import ARRAY, any_, column

    from telehealth.db.types import UTCDateTime

    with pytest.raises(ValueError):
        driver.compiled(select(literal_column("1")).where(column("at") == any_(bindparam("moments", type_=ARRAY(UTCDateTime())))))


async def test_a_row_read_on_the_driver_is_in_the_session_as_if_loaded(session_factory: async_sessionmaker[AsyncSession]) -> None:
    from sqlalchemy import event

    from telehealth.system.models import RateLimitEvent

    key = f"driver-{uuid.uuid4().hex[:8]}"
    row = "SELECT id, bucket, key, occurred_at FROM rate_limit_event WHERE key = $1"
    async with session_factory() as session:
        await driver.execute(session, "INSERT INTO rate_limit_event (bucket, key, occurred_at) VALUES ('probe', $1, now())", key)
        event_row = driver.loaded(session, RateLimitEvent, await driver.fetchrow(session, row, key))
        updates: list[str] = []
        event.listen(session.sync_session, "after_flush", lambda s, _: updates.extend(repr(o) for o in s.dirty))
        await session.flush()
        assert updates == [] and event_row in session  # persistent and unchanged: nothing to write
        state = inspect(event_row)
        assert state.persistent and state.session is session.sync_session and not state.modified
        assert driver.loaded(session, RateLimitEvent, await driver.fetchrow(session, row, key)) is event_row  # the session's own
        event_row.bucket = "changed"  # changed as any loaded object: the ORM writes it
        await session.flush()
        assert (await driver.fetchrow(session, row, key))["bucket"] == "changed"
        await session.rollback()
    assert inspect(event_row).detached  # the session's close lets it go, as any loaded object


async def test_load_locks_the_row_and_refresh_reads_it_again_unchanged(session_factory: async_sessionmaker[AsyncSession]) -> None:
    from sqlalchemy import event

    from telehealth.system.models import RateLimitEvent

    key = f"driver-{uuid.uuid4().hex[:8]}"
    async with session_factory() as writer:
        await driver.execute(writer, "INSERT INTO rate_limit_event (bucket, key, occurred_at) VALUES ('probe', $1, now())", key)
        row_id = await driver.fetchval(writer, "SELECT id FROM rate_limit_event WHERE key = $1", key)
        await writer.commit()
    async with session_factory() as session, session_factory() as other:
        assert await driver.load(session, RateLimitEvent, -1) is None
        locked = await driver.load(session, RateLimitEvent, row_id, for_update=True)
        assert locked is not None and locked.key == key and locked in session
        with pytest.raises(DBAPIError) as raised:  # another transaction cannot have it meanwhile
            await driver.fetchval(other, "SELECT id FROM rate_limit_event WHERE id = $1 FOR UPDATE NOWAIT", row_id)
        assert getattr(raised.value.orig, "sqlstate", None) == "55P03"  # lock_not_available
        await other.rollback()
        await driver.execute(session, "UPDATE rate_limit_event SET bucket = 'moved' WHERE id = $1", row_id)
        await driver.refresh(session, locked)
        assert locked.bucket == "moved"
        driver.stored(locked, bucket="told")
        assert locked.bucket == "told"
        written: list[object] = []
        event.listen(session.sync_session, "before_flush", lambda s, *_: written.extend(s.dirty))
        await session.flush()
        assert written == []  # refresh() and stored() leave nothing to write back
        assert (await driver.load(session, RateLimitEvent, row_id, for_update=True)) is locked
        assert locked.bucket == "moved"  # a lock reads the row as it is now
        assert (await driver.load(session, RateLimitEvent, row_id, by="id")) is locked
        with pytest.raises(ValueError):
            await driver.load(session, RateLimitEvent, key, by="key")  # not unique: which row would it be?
        await session.rollback()


def test_a_model_with_a_column_the_dialect_converts_on_the_way_out_is_not_loaded_from_driver_rows() -> None:
    from telehealth.waitlist.models import WaitlistEntry  # its conditions are an ARRAY SQLAlchemy converts on reading

    with pytest.raises(ValueError):
        driver.loaded(None, WaitlistEntry, {})  # type: ignore[arg-type]


def test_built_holds_what_the_constructor_would_and_refuses_what_it_would_leave_unset() -> None:
    from sqlalchemy import inspect

    from telehealth.scheduling.models import Appointment

    now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    values = {
        "appointment_type": "consult",
        "clinician_id": uuid.uuid4(),
        "patient_id": uuid.uuid4(),
        "status": "held",
        "starts_at": now,
        "ends_at": now + timedelta(minutes=30),
        "busy_from": now,
        "busy_until": now + timedelta(minutes=30),
        "hold_expires_at": now,
        "room_token": "token",
        "created_at": now,
    }
    made, built = Appointment(**values), driver.built(Appointment, values)
    columns = [prop.key for prop in inspect(Appointment).column_attrs]
    assert {c: getattr(built, c) for c in columns if c != "id"} == {c: getattr(made, c) for c in columns if c != "id"}
    assert isinstance(built.id, uuid.UUID) and built.id != driver.built(Appointment, values).id  # a fresh default each time
    assert inspect(built).transient
    with pytest.raises(TypeError, match="no column"):
        driver.built(Appointment, values | {"colour": "red"})
    with pytest.raises(TypeError, match="required"):
        driver.built(Appointment, {k: v for k, v in values.items() if k != "clinician_id"})


async def test_a_row_written_on_the_driver_is_in_the_session_as_stored(session_factory: async_sessionmaker[AsyncSession]) -> None:
    from datetime import UTC, datetime

    from telehealth.system.models import RateLimitEvent

    key = f"driver-{uuid.uuid4().hex[:8]}"
    async with session_factory() as session:
        values = {"bucket": "probe", "key": key, "occurred_at": datetime.now(UTC)}
        row_id = await driver.fetchval(
            session, "INSERT INTO rate_limit_event (bucket, key, occurred_at) VALUES ($1, $2, $3) RETURNING id", *values.values()
        )
        written = driver.built(RateLimitEvent, {"id": row_id, **values})
        driver.as_stored(session, written)
        state = inspect(written)
        assert state.persistent and state.session is session.sync_session and not state.modified
        assert await driver.load(session, RateLimitEvent, row_id) is written  # the session's own, no second object
        with pytest.raises(ValueError):
            driver.as_stored(session, written)  # already in a session
        written.bucket = "changed"  # changed as any loaded object: the ORM writes it
        await session.flush()
        assert await driver.fetchval(session, "SELECT bucket FROM rate_limit_event WHERE id = $1", row_id) == "changed"
        await session.rollback()
