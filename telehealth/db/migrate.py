"""Apply migrations from the app, the CLI and the tests, and tell whether this code may serve the schema.

Rolling releases: the database is migrated ahead of the old instances still serving. Migrations are expand
first (additive: old code keeps working); one that breaks older code (a contract: a dropped or renamed
column, a tightened constraint old code would violate) raises `schema_compatibility.oldest_code_revision`
to its own revision. An instance is ready when the database is at its head, or ahead of it and the oldest
code the database accepts is a revision this code knows (it is at least that new)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from telehealth.bundled import MIGRATIONS_DIR

if TYPE_CHECKING:  # db.roles imports db.engine, which is imported late here as well
    from telehealth.db.roles import DatabaseUrls

# Every upgrade takes this lock, so two processes starting at once never migrate twice.
MIGRATION_LOCK_KEY = 7_461_001


def alembic_config() -> Config:
    """Built here rather than read from pyproject.toml, which an installed wheel does not have; the migrations
    are found wherever they ship (the checkout's migrations/ or the wheel's telehealth/_migrations). The
    `alembic` command line (for new revisions) still reads pyproject.toml's [tool.alembic]."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))  # configparser escaping
    return config


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _upgrade(connection: Connection, config: Config | None, runtime_role: str | None) -> None:
    # A session lock, not a transaction's: each revision commits on its own (migrations/env.py), and one that
    # builds an index CONCURRENTLY commits mid-way; the lock must hold across all of them.
    connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
    connection.commit()
    config = config or alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    if runtime_role:
        from telehealth.db.roles import grant_runtime_role

        grant_runtime_role(connection, runtime_role)  # still under the lock: concurrent GRANTs on one object fail
        connection.commit()


async def upgrade_database(engine: AsyncEngine, *, config: Config | None = None, runtime_role: str | None = None) -> None:
    """Apply pending migrations as the engine's role (the tables' owner) over a connection of their own (same
    server and credentials as `engine`), closed afterwards: the session lock and the session's lock_timeout
    never reach the app's pool. Then grant `runtime_role`, the role the service connects as when it is
    another one (telehealth/db/roles.py)."""
    own = create_async_engine(
        engine.url, poolclass=pool.NullPool, connect_args={"timeout": 5, "server_settings": {"application_name": "telehealth-migrate"}}
    )
    try:
        async with own.connect() as connection:
            await connection.run_sync(_upgrade, config, runtime_role)
    finally:
        await own.dispose()


async def migrate_database(urls: DatabaseUrls) -> None:
    """Upgrade as the owner (MIGRATION_DATABASE_URL) and grant the runtime role: the CLI's way."""
    from telehealth.db.engine import make_engine

    engine = make_engine(urls.migration, pool_size=1)
    try:
        await upgrade_database(engine, runtime_role=urls.runtime_role)
    finally:
        await engine.dispose()


def _current(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    return frozenset(revision.revision for revision in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def _state(connection: Connection) -> str:
    """current, pending (the database is behind this code), ahead (newer, still compatible) or incompatible."""
    current = _current(connection)
    if current == head_revisions():
        return "current"
    if current <= known_revisions():
        return "pending"  # every revision the database has, this code has too: the database is behind
    oldest = connection.exec_driver_sql("SELECT oldest_code_revision FROM schema_compatibility").scalar()
    return "ahead" if oldest in known_revisions() else "incompatible"


async def schema_state(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return await connection.run_sync(_state)


async def schema_is_current(engine: AsyncEngine) -> bool:
    return await schema_state(engine) == "current"
