"""Each app process keeps the roster a slot search starts from, and reloads it as soon as any writer (another
process, bulk SQL) has changed hours, credentials or a clinician's account."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, text

from telehealth.accounts.models import Patient
from telehealth.db import driver
from telehealth.db.engine import transaction
from telehealth.scheduling.service import find_slots
from telehealth.scheduling.states import AppointmentType
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

NEW_YORK = ZoneInfo("America/New_York")  # the helpers' patient and prescriber zone


class RosterReads:
    """Counts the roster statement (the one that starts from the state's DEA registrations), sent through
    SQLAlchemy or on the driver (db/driver.py, whose statements pass no cursor event)."""

    def __init__(self, engine) -> None:
        self.count = 0
        self._engine = engine.sync_engine
        self._run = driver._run

    def __enter__(self) -> RosterReads:
        event.listen(self._engine, "before_cursor_execute", self._seen)

        async def counted(session, method, sql, args):
            self._count(sql)
            return await self._run(session, method, sql, args)

        driver._run = counted
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)
        driver._run = self._run

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self._count(statement)

    def _count(self, statement: str) -> None:
        if "FROM dea_registration JOIN user_account" in statement:
            self.count += 1


async def _local_hours(session_factory, patient_id, clock) -> set[str]:
    async with session_factory() as session:
        patient = await session.get(Patient, patient_id)
        found = await find_slots(
            session,
            patient=patient,
            appointment_type=AppointmentType.CONSULT,
            window_start=clock.now(),
            window_end=clock.now() + timedelta(days=7),
            now=clock.now(),
            limit=500,
        )
    return {slot.starts_at.astimezone(NEW_YORK).strftime("%H:%M") for slot in found}


async def _version(session_factory) -> int:
    async with session_factory() as session:
        return await session.scalar(text("SELECT n FROM calendar_version"))


async def test_a_search_reuses_the_roster_until_any_writer_changes_it(engine, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock, hours=((time(9), time(12)),))
    patient = await screened_patient(session_factory, settings, clock)
    with RosterReads(engine) as reads:
        first = await _local_hours(session_factory, patient.patient_id, clock)
        assert "09:00" in first and "11:00" in first and reads.count == 1
        assert await _local_hours(session_factory, patient.patient_id, clock) == first and reads.count == 1  # kept

        # Another process (here: plain SQL in its own transaction) shortens the hours: the next search sees it.
        async with transaction(session_factory) as session:
            await session.execute(
                text("UPDATE weekly_hours SET ends_at_local = '09:45' WHERE clinician_id = :id"), {"id": prescriber.user_id}
            )
        assert await _local_hours(session_factory, patient.patient_id, clock) == {"09:00"} and reads.count == 2

        # A patient's own account changes move nothing; a clinician's deactivation empties the search.
        before = await _version(session_factory)
        async with transaction(session_factory) as session:
            await session.execute(text("UPDATE user_account SET full_name = 'Renamed' WHERE id = :id"), {"id": patient.user_id})
        assert await _version(session_factory) == before
        assert await _local_hours(session_factory, patient.patient_id, clock) == {"09:00"} and reads.count == 2
        async with transaction(session_factory) as session:
            await session.execute(text("UPDATE user_account SET is_active = false WHERE id = :id"), {"id": prescriber.user_id})
        assert await _local_hours(session_factory, patient.patient_id, clock) == set() and reads.count == 3


async def test_a_change_not_yet_committed_is_picked_up_once_it_commits(engine, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock, hours=((time(9), time(12)),))
    patient = await screened_patient(session_factory, settings, clock)
    async with session_factory() as writer:
        await writer.execute(text("DELETE FROM weekly_hours WHERE clinician_id = :id"), {"id": prescriber.user_id})
        # The search meanwhile sees the committed hours (and keeps them under the committed version) ...
        assert "09:00" in await _local_hours(session_factory, patient.patient_id, clock)
        await writer.commit()
    # ... and the commit moves the version, so the next search reloads: no hours, no slots.
    assert await _local_hours(session_factory, patient.patient_id, clock) == set()


async def test_every_kind_of_roster_change_moves_the_version(session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    changes = [
        "UPDATE weekly_hours SET ends_at_local = '16:00' WHERE clinician_id = :id",
        "INSERT INTO date_override (id, clinician_id, on_date, kind) VALUES (gen_random_uuid(), :id, '2026-12-01', 'off')",
        "INSERT INTO appointment_type_settings (clinician_id, appointment_type, duration_minutes, buffer_before_minutes,"
        " buffer_after_minutes, minimum_notice_minutes, horizon_days, step_minutes) VALUES (:id, 'consult', 30, 0, 0, 60, 30, 15)",
        "UPDATE state_license SET expires_on = '2029-01-01' WHERE clinician_id = :id",
        "UPDATE dea_registration SET schedules = 'II' WHERE clinician_id = :id",
        "UPDATE clinician_profile SET timezone = 'America/Chicago' WHERE user_id = :id",
        "UPDATE user_account SET full_name = 'Dr Renamed' WHERE id = :id",
        "TRUNCATE date_override",
    ]
    for change in changes:
        before = await _version(session_factory)
        async with transaction(session_factory) as session:
            await session.execute(text(change), {"id": prescriber.user_id})
        assert await _version(session_factory) > before, change


async def test_without_the_version_row_nothing_is_kept(engine, session_factory, settings, clock):
    """An operator who deletes calendar_version loses the keeping, not the search."""
    await prescriber_with_hours(session_factory, settings, clock, hours=((time(9), time(12)),))
    patient = await screened_patient(session_factory, settings, clock)
    async with transaction(session_factory) as session:
        await session.execute(text("DELETE FROM calendar_version"))
    try:
        with RosterReads(engine) as reads:
            assert "09:00" in await _local_hours(session_factory, patient.patient_id, clock)
            assert "09:00" in await _local_hours(session_factory, patient.patient_id, clock)
            assert reads.count == 2
    finally:
        async with transaction(session_factory) as session:
            await session.execute(text("INSERT INTO calendar_version DEFAULT VALUES"))
