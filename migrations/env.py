"""Alembic environment: async engine, SQLModel metadata, URL from the app's settings.

The app and the tests hand in an open connection of its own (config.attributes["connection"]:
telehealth/db/migrate.py); the `alembic` command line builds its own engine from DATABASE_DIRECT_URL or
DATABASE_URL. `alembic upgrade <from>:<to> --sql` renders the SQL without a database (the migration linter,
tests/integration/system/test_migration_lint.py).

Online migrations on a database that serves traffic: each revision commits on its own (so one that builds an
index CONCURRENTLY in an autocommit block fits), every statement waits at most LOCK_TIMEOUT for its lock (a
DDL statement queued behind a long query blocks every query queued behind it: better to fail the release and
retry it), and each revision is logged with its duration.
"""

import asyncio
import logging
import time
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import telehealth.models  # noqa: F401  (the entry's list of every table: completes the metadata)
from telehealth.db.base import metadata
from telehealth.db.engine import async_database_url

config = context.config
target_metadata = metadata
logger = logging.getLogger("telehealth.migrations")
# statement_timeout stays the role's: an index build on a big table takes as long as it takes, and
# CONCURRENTLY lets traffic through meanwhile; what must be short is the wait for a lock.
LOCK_TIMEOUT = "5s"
TIMEOUTS_SQL = f"SET lock_timeout = '{LOCK_TIMEOUT}'"


class _Progress:
    """Logs each applied revision and how long it took (alembic's own lines are lowered to WARNING)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, *, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        now = time.monotonic()
        verb = "applied" if step.is_upgrade else "reverted"
        revision = step.up_revision_id if step.is_upgrade else step.down_revision_ids
        logger.info("migration %s %s (%s) in %.2f s", revision, verb, step.up_revision.doc if step.up_revision else "", now - self.started)
        self.started = now


def do_run_migrations(connection: Connection) -> None:
    if connection.in_transaction():  # the caller's own transaction (tests stepping through revisions): theirs to end
        connection.exec_driver_sql(TIMEOUTS_SQL.replace("SET", "SET LOCAL", 1))
    else:  # the migration's own connection (telehealth/db/migrate.py): session-level, so autocommit blocks have it too
        connection.exec_driver_sql(TIMEOUTS_SQL)
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
        on_version_apply=_Progress(),
    )
    current = set(context.get_context().get_current_heads())
    heads = set(context.script.get_heads())
    if current != heads:
        logger.info("migrating from %s to %s", ",".join(sorted(current)) or "an empty database", ",".join(sorted(heads)))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Render SQL (`--sql`) as the online run would send it, the lock timeout first."""
    context.configure(
        url="postgresql://",
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        transaction_per_migration=True,
    )
    context.get_context().impl.static_output(TIMEOUTS_SQL + ";")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(async_database_url(url), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


def database_url_from_settings() -> str:
    from telehealth.settings import load_settings

    settings = load_settings()
    if settings.database_url:  # the tables' owner migrates (telehealth/db/roles.py), past any PgBouncer
        return settings.migration_database_url or settings.direct_database_url or settings.database_url
    from telehealth.db.embedded import start_embedded_postgres

    url, _server = start_embedded_postgres(settings.embedded_data_dir)
    return url


connection = config.attributes.get("connection")
if context.is_offline_mode():
    run_migrations_offline()
elif connection is not None:
    do_run_migrations(connection)
else:
    asyncio.run(run_async_migrations(config.attributes.get("url") or database_url_from_settings()))
