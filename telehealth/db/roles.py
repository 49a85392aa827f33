"""Two database roles: the owner, which migrates (MIGRATION_DATABASE_URL), and the runtime role the service
connects as (DATABASE_URL), which owns nothing. A table's owner can `ALTER TABLE ... DISABLE TRIGGER`, so a
service connected as the owner could switch off the audit trail's append-only trigger; the runtime role
gets only the rows it works with, and on audit_event only reading, appending and the one-time sealing.

After every upgrade the owner (re)grants the runtime role (`runtime_role_grants`), so tables added by later
migrations are covered; the same statements are in docs/operations.md. The embedded demo makes its runtime
role itself (EMBEDDED_RUNTIME_ROLE).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Connection, make_url

from telehealth.db.engine import async_database_url
from telehealth.settings import Settings

logger = logging.getLogger("telehealth")
EMBEDDED_RUNTIME_ROLE = "telehealth_app"
# Read-only to the service: written by migrations alone.
MIGRATION_TABLES = ("alembic_version", "schema_compatibility")
SEALING_COLUMNS = "chain_seq, prev_hash, row_hash, key_id"


@dataclass(frozen=True)
class DatabaseUrls:
    runtime: str  # what the service, worker and CLI connect as
    migration: str  # what migrations run as: the tables' owner
    server: object | None = None  # the embedded server's handle, when it is the database

    @property
    def runtime_role(self) -> str | None:
        """The runtime role to grant after migrating, when it is another role than the owner."""
        runtime, owner = make_url(async_database_url(self.runtime)).username, make_url(async_database_url(self.migration)).username
        return runtime if runtime and runtime != owner else None


def resolve_database_urls(settings: Settings) -> DatabaseUrls:
    """DATABASE_URL and MIGRATION_DATABASE_URL (the same when unset: one role, as before); with neither, the
    embedded server, migrated as its superuser and served as EMBEDDED_RUNTIME_ROLE."""
    if settings.database_url:
        # Migrations need a session of their own: past any PgBouncer (DATABASE_DIRECT_URL) unless told otherwise.
        return DatabaseUrls(settings.database_url, settings.migration_database_url or settings.direct_database_url or settings.database_url)
    from telehealth.db.embedded import ensure_role, start_embedded_postgres

    owner_url, server = start_embedded_postgres(settings.embedded_data_dir)
    ensure_role(server, EMBEDDED_RUNTIME_ROLE)
    runtime_url = make_url(owner_url).set(username=EMBEDDED_RUNTIME_ROLE, password=None).render_as_string(hide_password=False)
    return DatabaseUrls(runtime_url, owner_url, server)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def runtime_role_grants(role: str) -> list[str]:
    """What the runtime role may do, granted by the owner (idempotent). No ownership, so no DDL and no
    DISABLE TRIGGER; no TRUNCATE anywhere; audit_event: SELECT, INSERT and UPDATE of the sealing columns
    only (its trigger refuses any update but the one-time sealing)."""
    who = quote_identifier(role)
    return [
        f"GRANT USAGE ON SCHEMA public TO {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}",
        f"REVOKE ALL ON audit_event FROM {who}",  # also drops any column grants, re-granted next
        f"GRANT SELECT, INSERT ON audit_event TO {who}",
        f"GRANT UPDATE ({SEALING_COLUMNS}) ON audit_event TO {who}",
        *(f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {who}" for table in MIGRATION_TABLES),
        # Tables and sequences later migrations create (as this owner) are granted as they appear.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {who}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {who}",
    ]


def grant_runtime_role(connection: Connection, role: str) -> None:
    """Run as the owner, inside the migration's transaction (under its advisory lock: concurrent GRANTs on
    one object fail with "tuple concurrently updated")."""
    for statement in runtime_role_grants(role):
        connection.exec_driver_sql(statement)
    owner = connection.exec_driver_sql(
        "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'audit_event'"
    ).scalar()
    if owner == role:  # grants cannot take away what ownership gives
        logger.warning("the runtime role %s owns the tables: hand them to the owner (REASSIGN OWNED BY, docs/operations.md)", role)
