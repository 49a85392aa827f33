"""The audit trail: append-only by the database, sealed into a hash chain, verified by `verify-audit`."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from telehealth.audit.keys import DEVELOPMENT_KEY, AuditKeys
from telehealth.audit.service import record_audit_event, seal_audit_chain, verify_audit_chain
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor

KEYS = AuditKeys.of(DEVELOPMENT_KEY)  # the key verify-audit uses with a DATABASE_URL and no AUDIT_HMAC_KEY


async def _write_events(session_factory, clock, count):
    for index in range(count):
        async with transaction(session_factory) as session:
            await record_audit_event(
                session, actor=Actor.system(), action="test.event", resource_type="thing", resource_id=index, now=clock.now()
            )


async def _seal(session_factory) -> int:
    async with transaction(session_factory) as session:
        return await seal_audit_chain(session, KEYS)


async def _verify(session_factory):
    async with session_factory() as session:
        return await verify_audit_chain(session, KEYS)


async def _tamper(session_factory, statement: str) -> None:
    async with session_factory() as session:
        # only a superuser bypassing triggers can do this; verify-audit must still notice
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(text(statement))
        await session.commit()


async def test_a_sealed_chain_verifies(session_factory, clock):
    await _write_events(session_factory, clock, 5)
    before = await _verify(session_factory)
    assert (before.rows_checked, before.awaiting_seal) == (0, 5)
    assert await _seal(session_factory) == 5
    assert await _seal(session_factory) == 0
    after = await _verify(session_factory)
    assert after.intact and (after.rows_checked, after.awaiting_seal) == (5, 0)


async def test_events_written_later_extend_the_chain(session_factory, clock):
    await _write_events(session_factory, clock, 2)
    await _seal(session_factory)
    await _write_events(session_factory, clock, 3)
    await _seal(session_factory)
    report = await _verify(session_factory)
    assert report.intact and report.rows_checked == 5


async def test_a_time_given_in_another_zone_still_verifies(session_factory, clock):
    from zoneinfo import ZoneInfo

    async with transaction(session_factory) as session:
        await record_audit_event(
            session,
            actor=Actor.system(),
            action="test.event",
            resource_type="thing",
            now=clock.now().astimezone(ZoneInfo("America/Chicago")),
        )
    await _seal(session_factory)
    assert (await _verify(session_factory)).intact


async def test_only_sealing_may_update_and_nothing_may_delete(session_factory, clock):
    await _write_events(session_factory, clock, 1)
    async with session_factory() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE audit_event SET action = 'x'"))
    async with session_factory() as session:
        with pytest.raises(DBAPIError, match="append-only"):  # a fake "seal" that also changes content
            await session.execute(text("UPDATE audit_event SET chain_seq = 1, row_hash = 'x', outcome = 'failure'"))
    await _seal(session_factory)
    for statement in (
        "UPDATE audit_event SET chain_seq = 7",
        "UPDATE audit_event SET action = 'x'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
    ):
        async with session_factory() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))


async def test_an_edited_event_is_found(session_factory, clock):
    await _write_events(session_factory, clock, 4)
    await _seal(session_factory)
    await _tamper(session_factory, "UPDATE audit_event SET outcome = 'failure' WHERE chain_seq = 3")
    report = await _verify(session_factory)
    assert (report.first_broken_seq, report.problem) == (3, "its content does not match its row_hash")


async def test_a_deleted_event_is_found(session_factory, clock):
    await _write_events(session_factory, clock, 4)
    await _seal(session_factory)
    await _tamper(session_factory, "DELETE FROM audit_event WHERE chain_seq = 2")
    report = await _verify(session_factory)
    assert (report.first_broken_seq, report.problem) == (2, "event 2 of the chain is missing")


async def test_a_recomputed_tail_is_still_found(session_factory, clock):
    """Rewriting one event and its hash breaks the next event's link."""
    await _write_events(session_factory, clock, 3)
    await _seal(session_factory)
    await _tamper(session_factory, "UPDATE audit_event SET row_hash = repeat('a', 64) WHERE chain_seq = 2")
    report = await _verify(session_factory)
    assert report.first_broken_seq == 2


async def test_concurrent_writers_and_sealers_keep_one_line(session_factory, clock):
    await asyncio.gather(*(_write_events(session_factory, clock, 5) for _ in range(6)), _seal(session_factory), _seal(session_factory))
    while await _seal(session_factory):
        pass
    report = await _verify(session_factory)
    assert report.intact and report.rows_checked == 30


async def test_verify_audit_command_seals_then_reports_the_break(database_url, session_factory, clock, monkeypatch):
    from telehealth import cli
    from telehealth.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        await _write_events(session_factory, clock, 3)
        intact = await asyncio.to_thread(CliRunner().invoke, cli.verify_audit_command)
        await _tamper(session_factory, "UPDATE audit_event SET action = 'edited' WHERE chain_seq = 2")
        broken = await asyncio.to_thread(CliRunner().invoke, cli.verify_audit_command)
    finally:
        get_settings.cache_clear()
    assert (intact.exit_code, intact.output.splitlines()[0]) == (0, "Audit chain intact: 3 events checked.")
    assert broken.exit_code == 1
    assert "Audit chain broken at event 2 of the chain" in broken.output
