"""Tampering by whoever owns the tables (issue 20): they can disable the trigger and rewrite rows, but without
the HMAC key no recomputed chain verifies; and a cut tail, or a chain rewritten with the key, contradicts the
anchors kept outside the database. Key rotation and the events sealed before keyed hashing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from click.testing import CliRunner
from sqlalchemy import select, text

from telehealth.audit.anchors import read_anchors
from telehealth.audit.keys import LEGACY_KEY_ID, AuditKeys, key_id_of
from telehealth.audit.models import AuditEvent
from telehealth.audit.service import (
    GENESIS_HASH,
    anchor_chain_head,
    compute_row_hash,
    record_audit_event,
    seal_audit_chain,
    verify_audit_chain,
)
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor

KEYS = AuditKeys.of("audit-key-for-these-tests-" + "k" * 20)


async def _write(session_factory, clock, count: int) -> None:
    async with transaction(session_factory) as session:
        for index in range(count):
            await record_audit_event(
                session, actor=Actor.system(), action="test.event", resource_type="thing", resource_id=index, now=clock.now()
            )


async def _seal(session_factory, keys: AuditKeys = KEYS) -> int:
    async with transaction(session_factory) as session:
        return await seal_audit_chain(session, keys)


async def _verify(session_factory, keys: AuditKeys = KEYS, anchors_at=None):
    async with session_factory() as session:
        return await verify_audit_chain(session, keys, anchors=read_anchors(anchors_at))


async def _anchor(session_factory, path, clock) -> int | None:
    async with session_factory() as session:
        return await anchor_chain_head(session, KEYS, path, now=clock.now())


async def _rewrite_as_owner(session_factory, *, from_seq: int, key: bytes | None, key_id: str, edit: str | None = None) -> None:
    """What the tables' owner can do: switch the trigger off, edit an event, and recompute every hash from
    `from_seq` on (plain SHA-256 when `key` is None, as the unkeyed chain was)."""
    async with transaction(session_factory) as session:
        await session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
        if edit:
            await session.execute(text(edit))
        events = (
            (await session.execute(select(AuditEvent).where(AuditEvent.chain_seq.is_not(None)).order_by(AuditEvent.chain_seq)))
            .scalars()
            .all()
        )
        prev = GENESIS_HASH
        for event in events:
            if event.chain_seq >= from_seq:
                event.prev_hash, event.key_id = prev, key_id
                event.row_hash = compute_row_hash(event, chain_seq=event.chain_seq, prev_hash=prev, key=key)
            prev = event.row_hash
        await session.flush()
        await session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))


async def test_a_rewrite_recomputed_with_plain_sha256_is_found(session_factory, clock):
    await _write(session_factory, clock, 4)
    await _seal(session_factory)
    edit = "UPDATE audit_event SET outcome = 'failure' WHERE chain_seq = 2"
    await _rewrite_as_owner(session_factory, from_seq=2, key=None, key_id=KEYS.current_id, edit=edit)
    report = await _verify(session_factory)
    assert (report.first_broken_seq, report.problem) == (2, "its content does not match its row_hash")


async def test_a_rewrite_passed_off_as_sealed_before_keyed_hashing_is_found(session_factory, clock):
    await _write(session_factory, clock, 4)
    await _seal(session_factory)
    edit = "UPDATE audit_event SET outcome = 'failure' WHERE chain_seq = 3"
    await _rewrite_as_owner(session_factory, from_seq=3, key=None, key_id=LEGACY_KEY_ID, edit=edit)
    report = await _verify(session_factory)
    assert report.first_broken_seq == 3
    assert report.problem == "it claims a plain SHA-256 hash (sealed before keyed hashing) after keyed events"


async def test_a_cut_tail_is_found_by_the_anchors(session_factory, clock, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    await _write(session_factory, clock, 5)
    await _seal(session_factory)
    assert await _anchor(session_factory, anchors, clock) == 5
    assert await _anchor(session_factory, anchors, clock) is None  # the head has not moved: no new line
    async with transaction(session_factory) as session:
        await session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
        await session.execute(text("DELETE FROM audit_event WHERE chain_seq >= 4"))
        await session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
    assert (await _verify(session_factory)).intact  # the keyed chain alone cannot tell
    report = await _verify(session_factory, anchors_at=anchors)
    assert report.first_broken_seq == 4
    assert report.problem.startswith("the chain ends at event 3 but event 5 was anchored outside the database at ")


async def test_a_chain_rewritten_with_the_key_is_found_by_the_anchors(session_factory, clock, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    await _write(session_factory, clock, 3)
    await _seal(session_factory)
    await _anchor(session_factory, anchors, clock)
    await _write(session_factory, clock, 2)
    await _seal(session_factory)
    await _anchor(session_factory, anchors, clock)
    assert [anchor.chain_seq for anchor in read_anchors(anchors).anchors] == [3, 5]
    edit = "UPDATE audit_event SET actor_role = 'patient' WHERE chain_seq = 2"
    await _rewrite_as_owner(session_factory, from_seq=2, key=KEYS.current, key_id=KEYS.current_id, edit=edit)
    assert (await _verify(session_factory)).intact  # whoever holds the key can forge; the anchors remember
    report = await _verify(session_factory, anchors_at=anchors)
    assert report.first_broken_seq == 3 and "differs from the one anchored outside the database" in report.problem


async def test_the_whole_chain_rewritten_as_unkeyed_is_found_by_the_anchors(session_factory, clock, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    await _write(session_factory, clock, 3)
    await _seal(session_factory)
    await _anchor(session_factory, anchors, clock)
    edit = "UPDATE audit_event SET outcome = 'denied' WHERE chain_seq = 1"
    await _rewrite_as_owner(session_factory, from_seq=1, key=None, key_id=LEGACY_KEY_ID, edit=edit)
    report = await _verify(session_factory, anchors_at=anchors)
    assert report.first_broken_seq == 3 and "anchored outside the database" in report.problem


async def test_a_forged_head_is_never_anchored(session_factory, clock, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    await _write(session_factory, clock, 2)
    await _seal(session_factory)
    await _rewrite_as_owner(session_factory, from_seq=2, key=None, key_id=KEYS.current_id)
    assert await _anchor(session_factory, anchors, clock) is None
    assert not anchors.exists()


async def test_rotated_keys_verify_what_they_sealed(session_factory, clock):
    old, new = KEYS, AuditKeys.of("the-next-audit-key-" + "n" * 20, ("audit-key-for-these-tests-" + "k" * 20,))
    await _write(session_factory, clock, 2)
    await _seal(session_factory, old)
    await _write(session_factory, clock, 2)
    await _seal(session_factory, new)
    async with session_factory() as session:
        key_ids = list((await session.execute(select(AuditEvent.key_id).order_by(AuditEvent.chain_seq))).scalars())
    assert key_ids == [old.current_id] * 2 + [new.current_id] * 2 and old.current_id != new.current_id
    assert (await _verify(session_factory, new)).intact
    without_old = AuditKeys.of("the-next-audit-key-" + "n" * 20)
    report = await _verify(session_factory, without_old)
    assert report.first_broken_seq == 1
    assert report.problem == f"it was sealed with key {old.current_id}, which is neither AUDIT_HMAC_KEY nor in AUDIT_HMAC_OLD_KEYS"


async def test_events_sealed_before_keyed_hashing_open_the_chain(session_factory, clock):
    """Migration 0029 marks events sealed with the plain SHA-256 chain 'sha256-legacy'; they still verify,
    and the keyed chain carries on from their last hash."""
    await _write(session_factory, clock, 3)
    async with transaction(session_factory) as session:  # sealed the old way (the trigger allows this one-time seal)
        prev = GENESIS_HASH
        for seq, event in enumerate((await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all(), start=1):
            event.chain_seq, event.prev_hash, event.key_id = seq, prev, LEGACY_KEY_ID
            event.row_hash = prev = compute_row_hash(event, chain_seq=seq, prev_hash=prev, key=None)
    await _write(session_factory, clock, 2)
    await _seal(session_factory)
    report = await _verify(session_factory)
    assert report.intact and (report.rows_checked, report.legacy_rows) == (5, 3)


def test_a_key_id_names_the_key_without_revealing_it():
    assert key_id_of(b"one key") == key_id_of(b"one key") != key_id_of(b"another key")
    assert len(key_id_of(b"one key")) <= 20  # audit_event.key_id


async def test_verify_audit_checks_the_anchors_then_anchors_the_head(database_url, session_factory, clock, tmp_path, monkeypatch):
    from telehealth import cli
    from telehealth.settings import get_settings

    anchors = tmp_path / "anchors.jsonl"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AUDIT_HMAC_KEY", "audit-key-for-these-tests-" + "k" * 20)
    monkeypatch.setenv("AUDIT_ANCHOR_PATH", str(anchors))
    get_settings.cache_clear()
    try:
        await _write(session_factory, clock, 3)
        first = await asyncio.to_thread(CliRunner().invoke, cli.verify_audit_command)
        second = await asyncio.to_thread(CliRunner().invoke, cli.verify_audit_command)
        async with transaction(session_factory) as session:
            await session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
            await session.execute(text("DELETE FROM audit_event WHERE chain_seq = 3"))
            await session.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
        cut = await asyncio.to_thread(CliRunner().invoke, cli.verify_audit_command)
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0 and "Anchors: 0 checked against the chain" in first.output
    assert second.exit_code == 0 and "Anchors: 1 checked against the chain" in second.output
    lines = [json.loads(line) for line in anchors.read_text().splitlines()]
    assert [(line["chain_seq"], line["key_id"]) for line in lines] == [(3, KEYS.current_id)]  # the head moved once
    assert (
        cut.exit_code == 1
        and "Audit chain broken at event 3 of the chain: the chain ends at event 2 but event 3 was anchored" in cut.output
    )
    assert len(anchors.read_text().splitlines()) == 1  # a broken chain is never anchored


async def test_migration_0029_marks_the_events_sealed_before_it_as_legacy(database_url):
    """A database sealed with the plain SHA-256 chain (revision 0028), upgraded: its events keep their hashes
    as 'sha256-legacy', verify, and the keyed chain carries on after them."""
    from alembic import command
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from telehealth.db.engine import async_database_url, make_engine, make_session_factory
    from telehealth.db.migrate import alembic_config, upgrade_database

    name = make_url(async_database_url(database_url)).database + "_legacy"
    admin = create_async_engine(async_database_url(database_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(async_database_url(database_url)).set(database=name).render_as_string(hide_password=False), pool_size=2)

    def upgrade_to(revision):
        def run(connection):
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

        return run

    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to("0028_sitter_checks"))
            prev = GENESIS_HASH
            for seq in (1, 2):  # written and sealed as the code before 0029 did (columns of that time only)
                event_id = (
                    await connection.execute(
                        text(
                            "INSERT INTO audit_event (occurred_at, actor_role, action, resource_type, outcome) "
                            "VALUES (now(), 'system', 'old.event', 'thing', 'success') RETURNING id"
                        )
                    )
                ).scalar_one()
                row = (await connection.execute(text("SELECT * FROM audit_event WHERE id = :id"), {"id": event_id})).mappings().one()
                event = AuditEvent(**{column: row[column] for column in row})
                row_hash = compute_row_hash(event, chain_seq=seq, prev_hash=prev, key=None)
                await connection.execute(
                    text("UPDATE audit_event SET chain_seq = :seq, prev_hash = :prev, row_hash = :hash WHERE id = :id"),
                    {"seq": seq, "prev": prev, "hash": row_hash, "id": event_id},
                )
                prev = row_hash
        await upgrade_database(engine)  # as a release does: revisions that build an index CONCURRENTLY commit mid-way
        factory = make_session_factory(engine)
        async with transaction(factory) as session:
            await record_audit_event(session, actor=Actor.system(), action="new.event", resource_type="thing", now=datetime.now(UTC))
        await _seal(factory)
        async with factory() as session:
            key_ids = list((await session.execute(select(AuditEvent.key_id).order_by(AuditEvent.chain_seq))).scalars())
        report = await _verify(factory)
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    assert key_ids == [LEGACY_KEY_ID, LEGACY_KEY_ID, KEYS.current_id]
    assert report.intact and (report.rows_checked, report.legacy_rows) == (3, 2)
