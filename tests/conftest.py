"""Real parts for every test: a PostgreSQL database built by the migrations, a real SMTP server (aiosmtpd),
the app served in-process, and an injectable clock.

The database: the server at TEST_DATABASE_URL when set, else (as in CI, like a newcomer) an embedded PostgreSQL under
.data/. Each run creates its own database there and drops it at the end; each test starts from empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

import telehealth.jobs
import telehealth.models  # noqa: F401  (completes the metadata)
from telehealth.accounts import security
from telehealth.db.base import metadata
from telehealth.db.engine import async_database_url, make_engine, make_session_factory
from telehealth.db.migrate import upgrade_database
from telehealth.devtools.stripe_stand_in import FakeStripe
from telehealth.lib.clock import FrozenClock
from telehealth.settings import PROJECT_ROOT, Settings
from tests.fakes.smtp import SmtpServer

START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

# Argon2 at production's cost (argon2-cffi's defaults, RFC 9106's low-memory profile: 3 passes over 64 MiB) takes
# 0.15-0.35 s of CPU per hash or verify here, and the suite makes and signs in thousands of accounts. In this process
# the tests hash at the least cost instead; tests/unit/accounts/test_password_hashing.py checks PRODUCTION_HASHER,
# what telehealth/accounts/security.py builds, and the processes the tests start (the demo server, the workers) hash
# at production's cost.
PRODUCTION_HASHER, PRODUCTION_DUMMY_HASH = security._hasher, security._DUMMY_HASH
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_hasher", TEST_HASHER)
        patch.setattr(security, "_DUMMY_HASH", TEST_HASHER.hash("not-a-real-password"))
        yield


def _server_url() -> str:
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    from telehealth.db.embedded import start_embedded_postgres

    url, _server = start_embedded_postgres(PROJECT_ROOT / ".data" / "test-postgres-18")
    return url


def _with_database(url: str, name: str) -> str:
    """The same server, another database name (works for host:port and ?host=/socket URLs)."""
    from sqlalchemy.engine import make_url

    return make_url(async_database_url(url)).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    server = _server_url()
    name = f"telehealth_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(async_database_url(server), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = _with_database(server, name)
    engine = make_engine(url, pool_size=2)
    await upgrade_database(engine)
    await engine.dispose()
    yield url
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_session_factory(engine)


# Every table of the metadata (telehealth/models.py lists them all) but the one-row tables the migrations seed and
# the code only reads or updates: emptied, they would be missing for the next test (alembic_version is not in it).
MIGRATION_SEEDED_TABLES = frozenset({"schema_compatibility", "calendar_version"})
TABLES_TO_EMPTY = tuple(table.name for table in metadata.sorted_tables if table.name not in MIGRATION_SEEDED_TABLES)
_TABLES_WITH_ROWS = " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT FROM \"{name}\")" for name in TABLES_TO_EMPTY)
# The sequences (identity columns) of the given tables, back to where they started, as TRUNCATE's RESTART IDENTITY does
_RESTART_SEQUENCES = """
    SELECT setval(sequence.seqrelid, sequence.seqstart, false)
    FROM pg_sequence AS sequence
    JOIN pg_depend AS owned ON owned.classid = 'pg_class'::regclass AND owned.objid = sequence.seqrelid AND owned.deptype IN ('a', 'i')
    WHERE owned.refobjid = ANY(CAST(:tables AS regclass[]))
"""


async def empty_all_tables(engine: AsyncEngine) -> None:
    """Start a test from empty tables. Integration and browser tests use it. Rows come back in no set order
    (DELETE leaves space that later rows may fill): a test that compares a list of rows orders its query.

    A test fills a handful of the tables with a few rows: those are emptied with DELETE, and their sequences
    restarted. (TRUNCATE of every table gave each of them a new file and took 0.3-0.7 s a test on this machine.)"""
    async with engine.begin() as connection:
        with_rows = (await connection.execute(text(_TABLES_WITH_ROWS))).scalars().all()
        if not with_rows:
            return
        # replica role skips the append-only trigger (only the test harness may empty the audit trail) and the
        # foreign keys' triggers: every table that has rows is emptied, so no reference is left dangling
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        for name in with_rows:
            await connection.execute(text(f'DELETE FROM "{name}"'))
        await connection.execute(text(_RESTART_SEQUENCES), {"tables": list(with_rows)})


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stripe_fake() -> Iterator[FakeStripe]:
    """One local fake of Stripe's API for the run; the real `stripe` client talks to it over HTTP."""
    import stripe

    stripe.HTTPClient.INITIAL_DELAY = 0.01  # the client's retry back-off: keep retried calls fast in tests
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def settings(database_url: str, smtp: SmtpServer, stripe_fake: FakeStripe) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        auto_migrate=False,
        seed_demo=False,
        smtp_url=smtp.url,
        run_worker_in_process=False,
        public_base_url="http://testserver.local",
        stripe_api_key="sk_test_fake",
        stripe_webhook_secret=stripe_fake.webhook_secret,
        stripe_api_base=stripe_fake.base_url,
        stripe_timeout_seconds=2.0,
    )


@pytest.fixture
async def client(settings: Settings, clock: FrozenClock) -> AsyncIterator[AsyncTestClient]:
    from telehealth.asgi import create_app

    app = create_app(settings, clock=clock)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        test_client.event_hooks = {"request": [echo_current_csrf_token(test_client)], "response": []}
        yield test_client


def echo_current_csrf_token(client: AsyncTestClient):  # type: ignore[no-untyped-def]
    """The CSRF token is bound to the session, so it changes when the session does (sign-in, the second factor,
    sign-out). A request that carries `x-csrftoken` sends the cookie's value as it is now, as a script in the
    page would read it at the moment it posts; tests need not fetch it again after each change of session.
    (tests/integration/security/test_edge_csrf.py checks stale and foreign tokens with clients of its own.)"""

    async def hook(request: object) -> None:
        headers = request.headers  # type: ignore[attr-defined]
        if "x-csrftoken" in headers and (token := client.cookies.get("csrftoken")):
            headers["x-csrftoken"] = token

    return hook


def with_settings(settings: Settings, **changes: object) -> Settings:
    return replace(settings, **changes)  # type: ignore[arg-type]
