"""Health, readiness, database outages, migrations, OpenAPI and the development mailbox."""

from __future__ import annotations

from alembic import command
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from telehealth.asgi import create_app
from telehealth.db.engine import make_engine
from telehealth.db.migrate import alembic_config, schema_is_current, upgrade_database
from telehealth.lib.key_texts import new_key_text
from tests.conftest import with_settings
from tests.fakes.smtp import free_port
from tests.helpers import csrf_headers

DOWN_URL = "postgresql://postgres@127.0.0.1:{port}/nothing"


async def test_health_and_ready(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "reachable", "migrations": "current"}


async def test_ready_through_a_rolling_release(client, session_factory):
    """The database migrated ahead of this instance keeps it ready while the oldest code the database serves
    is a revision this code knows; a contract migration raising that bar, or a database behind, is 503."""
    from telehealth.db.engine import transaction
    from telehealth.db.migrate import head_revisions

    [head] = head_revisions()

    async def set_state(version: str, oldest: str) -> None:
        async with transaction(session_factory) as session:
            await session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": version})
            await session.execute(text("UPDATE schema_compatibility SET oldest_code_revision = :o"), {"o": oldest})

    try:
        await set_state("0999_a_future_expand", "0025_schema_compatibility")
        ahead = await client.get("/ready")
        assert (ahead.status_code, ahead.json()["migrations"]) == (200, "ahead")
        await set_state("0999_a_future_contract", "0999_a_future_contract")
        contracted = await client.get("/ready")
        assert (contracted.status_code, contracted.json()["migrations"]) == (503, "incompatible")
        await set_state("0024_observation_window", "0025_schema_compatibility")
        behind = await client.get("/ready")
        assert (behind.status_code, behind.json()["migrations"]) == (503, "pending")
    finally:
        await set_state(head, "0025_schema_compatibility")
    assert (await client.get("/ready")).json()["migrations"] == "current"


async def test_database_down_ready_says_so_and_requests_answer_503(settings, clock):
    down = with_settings(settings, database_url=DOWN_URL.format(port=free_port()))
    async with AsyncTestClient(app=create_app(down, clock=clock)) as client:
        assert (await client.get("/health")).status_code == 200
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["database"] == "unreachable"
        response = await client.post(
            "/api/v1/auth/sign-in", json={"email": "a@b.org", "password": "whatever"}, headers=await csrf_headers(client)
        )
        assert response.status_code == 503
        assert response.json()["code"] == "service.unavailable"
        assert response.headers["retry-after"] == "5"


async def test_migrations_from_empty_and_alembic_check(database_url):
    """A fresh database built by the migrations matches the models exactly (`alembic check` is clean),
    and the downgrade path works."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from telehealth.db.engine import async_database_url

    name = make_url(async_database_url(database_url)).database + "_m"
    admin = create_async_engine(async_database_url(database_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(async_database_url(database_url)).set(database=name).render_as_string(hide_password=False))
    try:
        assert not await schema_is_current(engine)
        await upgrade_database(engine)
        assert await schema_is_current(engine)

        def check_then_round_trip(connection):
            config = alembic_config()
            config.attributes["connection"] = connection
            command.check(config)  # raises if the models and the migrations disagree
            connection.commit()  # each revision in its own transaction, as a release runs them (some commit mid-way)
            command.downgrade(config, "base")
            command.upgrade(config, "head")

        async with engine.connect() as connection:
            await connection.run_sync(check_then_round_trip)
        assert await schema_is_current(engine)
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_openapi_schema_is_served(client):
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/auth/sign-in" in schema["paths"]
    assert "/api/v1/patients/{patient_id}" in schema["paths"]


async def test_dev_mailbox_shows_mail_in_development_only(settings, clock, session_factory, tmp_path):
    from telehealth.db.engine import transaction
    from telehealth.notifications.mailer import DatabaseMailbox
    from telehealth.notifications.service import queue_email
    from tests.helpers import drain_jobs, worker_context

    async with transaction(session_factory) as session:
        await queue_email(session, to="a@example.org", template="portal_update", context={"recipient_name": "A"}, now=clock.now())
    await drain_jobs(worker_context(session_factory, settings, clock, mailer=DatabaseMailbox(session_factory)))
    development = with_settings(settings, environment="development", smtp_url=None)
    async with AsyncTestClient(app=create_app(development, clock=clock)) as client:
        page = await client.get("/dev/mailbox/")
        assert page.status_code == 200
        assert "You have an update in your Evergreen Home Program portal" in page.text
    production = with_settings(
        settings,
        environment="production",
        secret_key="x" * 40,
        audit_hmac_key="k" * 40,
        audit_anchor_path=tmp_path / "anchors.jsonl",
        totp_encryption_key=new_key_text("k1"),
        public_base_url="https://testserver.local",
    )
    async with AsyncTestClient(app=create_app(production, clock=clock)) as client:
        assert (await client.get("/dev/mailbox/")).status_code == 404


async def test_a_database_that_starts_after_the_app_is_migrated_and_used(database_url, settings, clock):
    """The app starts while PostgreSQL is unreachable: /ready says so, requests answer 503, and once the
    database answers the app applies its migrations by itself and serves."""
    import asyncio

    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from telehealth.db.engine import async_database_url
    from tests.fakes.tcp_proxy import PostgresProxy

    name = make_url(async_database_url(database_url)).database + "_late"
    admin = create_async_engine(async_database_url(database_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    port = free_port()
    proxy = PostgresProxy(make_url(async_database_url(database_url)).set(database=name).render_as_string(hide_password=False), port)
    late = with_settings(settings, database_url=f"postgresql://postgres@127.0.0.1:{port}/{name}", auto_migrate=True)
    try:
        async with AsyncTestClient(app=create_app(late, clock=clock)) as client:
            assert (await client.get("/ready")).json()["database"] == "unreachable"
            signing_in = await client.post(
                "/api/v1/auth/sign-in", json={"email": "a@b.org", "password": "whatever"}, headers=await csrf_headers(client)
            )
            assert signing_in.status_code == 503
            proxy.start()
            for _ in range(100):  # the retry backs off 1 s, 2 s, 4 s ...; poll rather than time it
                if (await client.get("/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert (await client.get("/ready")).json() == {"status": "ready", "database": "reachable", "migrations": "current"}
            signing_in = await client.post(
                "/api/v1/auth/sign-in", json={"email": "a@b.org", "password": "whatever"}, headers=await csrf_headers(client)
            )
            assert signing_in.status_code == 401  # a real answer from a real database
    finally:
        proxy.stop()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
