"""Apply migrations from the app, the CLI and the tests, and tell whether this code may serve the schema.

Rolling releases: the database is migrated ahead of the old instances still serving. Migrations are expand
first (additive: old code keeps working); one that breaks older code (a contract: a dropped or renamed
column, a tightened constraint old code would violate) raises `schema_compatibility.oldest_code_revision`
to its own revision. An instance is ready when the database is at its head, or ahead of it and the oldest
code the database accepts is a revision this code knows (it is at least that new)."""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.bundled import MIGRATIONS_DIR

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


def _upgrade(connection: Connection) -> None:
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_database(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


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
