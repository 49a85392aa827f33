"""Alembic environment: async engine, SQLModel metadata, URL from the app's settings.

The app and the tests hand in an open connection (config.attributes["connection"]); the `alembic` command
line builds its own engine from DATABASE_URL.
"""

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import telehealth.db.registry  # noqa: F401  (registers every table)
from telehealth.db.base import metadata
from telehealth.db.engine import async_database_url

config = context.config
target_metadata = metadata


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
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
    if settings.database_url:  # the tables' owner migrates (telehealth/db/roles.py)
        return settings.migration_database_url or settings.database_url
    from telehealth.db.embedded import start_embedded_postgres

    url, _server = start_embedded_postgres(settings.embedded_data_dir)
    return url


connection = config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
elif connection is not None:
    do_run_migrations(connection)
else:
    asyncio.run(run_async_migrations(config.attributes.get("url") or database_url_from_settings()))
