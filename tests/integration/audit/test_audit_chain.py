"""The audit trail: append-only by the database, hash-chained, verified by `verify-audit`."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from telehealth.audit.service import Actor, record_audit_event, verify_audit_chain
from telehealth.db.engine import transaction


async def _write_events(session_factory, clock, count):
    for index in range(count):
        async with transaction(session_factory) as session:
            await record_audit_event(
                session, actor=Actor.system(), action="test.event", resource_type="thing", resource_id=index, now=clock.now()
            )


async def test_an_intact_chain_verifies(session_factory, clock):
    await _write_events(session_factory, clock, 5)
    async with session_factory() as session:
        report = await verify_audit_chain(session)
    assert report.intact and report.rows_checked == 5


async def test_a_time_given_in_another_zone_still_verifies(session_factory, clock):
    from zoneinfo import ZoneInfo

    async with transaction(session_factory) as session:
        await record_audit_event(
            session, actor=Actor.system(), action="test.event", resource_type="thing",
            now=clock.now().astimezone(ZoneInfo("America/Chicago")),
        )  # fmt: skip
    async with session_factory() as session:
        assert (await verify_audit_chain(session)).intact


async def test_update_and_delete_are_refused_by_the_database(session_factory, clock):
    await _write_events(session_factory, clock, 1)
    for statement in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event", "TRUNCATE audit_event"):
        async with session_factory() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))


async def test_an_edited_row_is_found(session_factory, clock):
    await _write_events(session_factory, clock, 4)
    async with session_factory() as session:
        # only a superuser bypassing triggers can do this; verify-audit must still notice
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(text("UPDATE audit_event SET outcome = 'failure' WHERE id = 3"))
        await session.commit()
    async with session_factory() as session:
        report = await verify_audit_chain(session)
    assert (report.first_broken_id, report.problem) == (3, "its content does not match its row_hash")


async def test_a_deleted_row_is_found(session_factory, clock):
    await _write_events(session_factory, clock, 4)
    async with session_factory() as session:
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(text("DELETE FROM audit_event WHERE id = 2"))
        await session.commit()
    async with session_factory() as session:
        report = await verify_audit_chain(session)
    assert report.first_broken_id == 3
    assert "prev_hash" in report.problem


async def test_concurrent_writers_keep_one_line(session_factory, clock):
    await asyncio.gather(*(_write_events(session_factory, clock, 5) for _ in range(6)))
    async with session_factory() as session:
        report = await verify_audit_chain(session)
    assert report.intact and report.rows_checked == 30


async def test_verify_audit_command_reports_the_break(database_url, session_factory, clock, monkeypatch):
    from telehealth import cli
    from telehealth.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        await _write_events(session_factory, clock, 3)
        intact = await asyncio.to_thread(CliRunner().invoke, cli.verify_audit_command)
        async with session_factory() as session:
            await session.execute(text("SET LOCAL session_replication_role = replica"))
            await session.execute(text("UPDATE audit_event SET action = 'edited' WHERE id = 2"))
            await session.commit()
        broken = await asyncio.to_thread(CliRunner().invoke, cli.verify_audit_command)
    finally:
        get_settings.cache_clear()
    assert (intact.exit_code, intact.output.strip()) == (0, "Audit chain intact: 3 events checked.")
    assert broken.exit_code == 1
    assert "Audit chain broken at event 2" in broken.output
