"""The service's runtime role against its own audit trail (issue 20): it owns nothing, so it cannot switch off
the append-only trigger, rewrite, delete or truncate events, or change the schema; and the service still
does its whole job connected as it (sign in, seal, anchor, verify)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.accounts.roles import Role
from telehealth.audit.anchors import read_anchors
from telehealth.audit.keys import audit_keys
from telehealth.audit.service import record_audit_event, seal_audit_chain, verify_audit_chain
from telehealth.db.engine import async_database_url, make_engine, make_session_factory, transaction
from telehealth.db.migrate import upgrade_database
from telehealth.db.roles import DatabaseUrls
from telehealth.lib.actors import Actor
from tests.conftest import with_settings
from tests.helpers import drain_jobs, make_person, sign_in, worker_context


@pytest.fixture
async def runtime_url(database_url: str, engine: AsyncEngine) -> AsyncIterator[str]:
    """A login role made for this test, granted the way every upgrade grants DATABASE_URL's role."""
    role = f"telehealth_rt_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        await connection.commit()
    url = make_url(async_database_url(database_url)).set(username=role, password=None).render_as_string(hide_password=False)
    assert DatabaseUrls(url, database_url).runtime_role == role
    await upgrade_database(engine, runtime_role=role)
    yield url
    async with engine.connect() as connection:  # roles are the server's, not the test database's
        await connection.execute(text(f'DROP OWNED BY "{role}"'))
        await connection.execute(text(f'DROP ROLE "{role}"'))
        await connection.commit()


@pytest.fixture
async def runtime_engine(runtime_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(runtime_url, pool_size=2)
    yield engine
    await engine.dispose()


async def _refused(engine: AsyncEngine, statement: str, reason: str) -> None:
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError, match=reason):
            await connection.execute(text(statement))


async def test_the_runtime_role_cannot_switch_off_or_rewrite_the_audit_trail(runtime_engine, settings, clock):
    factory, keys = make_session_factory(runtime_engine), audit_keys(settings)
    async with transaction(factory) as session:  # it may append and seal
        for index in range(3):
            await record_audit_event(
                session, actor=Actor.system(), action="test.event", resource_type="thing", resource_id=index, now=clock.now()
            )
    async with transaction(factory) as session:
        assert await seal_audit_chain(session, keys) == 3

    not_owner = "must be owner"
    await _refused(runtime_engine, "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only", not_owner)
    await _refused(runtime_engine, "ALTER TABLE audit_event DISABLE TRIGGER ALL", not_owner)
    await _refused(runtime_engine, "DROP TRIGGER audit_event_append_only ON audit_event", not_owner)
    await _refused(
        runtime_engine,
        "CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "must be owner|permission denied for schema",  # PostgreSQL 15+ grants no CREATE on public to anyone
    )
    await _refused(runtime_engine, "ALTER TABLE audit_event ADD COLUMN note text", not_owner)
    await _refused(runtime_engine, "SET session_replication_role = replica", "permission denied")
    # Content columns are not even granted; the sealing columns are, and the trigger refuses a second seal.
    await _refused(runtime_engine, "UPDATE audit_event SET action = 'edited' WHERE chain_seq = 2", "permission denied")
    await _refused(runtime_engine, "UPDATE audit_event SET row_hash = repeat('a', 64) WHERE chain_seq = 2", "append-only")
    await _refused(runtime_engine, "DELETE FROM audit_event WHERE chain_seq = 3", "permission denied")
    await _refused(runtime_engine, "TRUNCATE audit_event", "permission denied")
    await _refused(runtime_engine, "UPDATE alembic_version SET version_num = 'x'", "permission denied")
    await _refused(runtime_engine, "DROP TABLE waitlist_entry", not_owner)

    async with factory() as session:
        assert (await verify_audit_chain(session, keys)).intact


async def test_the_service_serves_as_the_runtime_role(runtime_url, settings, clock, session_factory, tmp_path):
    """Sign-in (audited), readiness, the sealing and anchoring jobs and verification, all as the runtime role."""
    from telehealth.asgi import create_app

    person = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    as_runtime = with_settings(settings, database_url=runtime_url, audit_anchor_path=tmp_path / "anchors.jsonl")
    async with AsyncTestClient(app=create_app(as_runtime, clock=clock), base_url="http://testserver.local") as client:
        assert (await client.get("/ready")).status_code == 200
        await sign_in(client, person, clock)
        assert (await client.get("/api/v1/auth/me")).status_code == 200

    engine = make_engine(runtime_url, pool_size=2)
    try:
        factory = make_session_factory(engine)
        await drain_jobs(worker_context(factory, as_runtime, clock))
        from telehealth.audit.jobs import anchor_chain, seal_chain

        context = worker_context(factory, as_runtime, clock)
        await seal_chain(context, {})
        await anchor_chain(context, {})
        async with factory() as session:
            report = await verify_audit_chain(session, audit_keys(as_runtime), anchors=read_anchors(as_runtime.audit_anchor_path))
            actions = set((await session.execute(text("SELECT action FROM audit_event"))).scalars())
    finally:
        await engine.dispose()
    assert "auth.sign_in" in actions
    assert report.intact and report.rows_checked >= 1 and report.awaiting_seal == 0
    assert report.anchors_checked == 1
