"""db/status_swap.py: the compare-and-swap every status change makes, as SQL text on the driver (and as
SQLAlchemy's UPDATE for a column whose value needs converting, JSON say), with the same effects either way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.db.status_swap import swap_status
from telehealth.lib.errors import Conflict
from telehealth.outbox.models import Job
from telehealth.outbox.states import JOB_TRANSITIONS, JobStatus

NEW_YORK_WINTER = timezone(timedelta(hours=-5))


def _parked(now: datetime) -> Job:
    return Job(id=uuid.uuid4(), kind="probe.kind", payload={"n": 1}, status=JobStatus.PARKED, run_at=now, attempts=8, created_at=now)


async def test_the_swap_moves_a_row_still_in_its_source_and_converts_times_to_utc(session_factory: async_sessionmaker[AsyncSession]):
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    async with session_factory() as session:
        job = _parked(now)
        session.add(job)  # pending: the swap sends it first, as the session's own UPDATE would
        action = await swap_status(
            session,
            Job,
            job.id,
            table=JOB_TRANSITIONS,
            source=JobStatus.PARKED,
            target=JobStatus.QUEUED,
            values={"attempts": 0, "run_at": now.astimezone(NEW_YORK_WINTER), "lease_until": None},
        )
        assert action == "requeue"
        row = (await session.execute(select(Job.status, Job.attempts, Job.run_at).where(Job.id == job.id))).one()
        assert row == (JobStatus.QUEUED, 0, now)
        # the row is no longer parked: a second swap from parked loses, as a concurrent writer would
        with pytest.raises(Conflict) as lost:
            await swap_status(session, Job, job.id, table=JOB_TRANSITIONS, source=JobStatus.PARKED, target=JobStatus.QUEUED)
        assert lost.value.code == "job.status_changed"
        with pytest.raises(Conflict) as invalid:  # not in the table: refused before any statement
            await swap_status(session, Job, job.id, table=JOB_TRANSITIONS, source=JobStatus.QUEUED, target=JobStatus.PARKED)
        assert invalid.value.code == "job.invalid_transition"
        await session.rollback()


async def test_a_naive_time_is_refused_as_the_column_type_refuses_it(session_factory: async_sessionmaker[AsyncSession]):
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    async with session_factory() as session:
        job = _parked(now)
        session.add(job)
        with pytest.raises(ValueError, match="naive datetime"):
            await swap_status(
                session,
                Job,
                job.id,
                table=JOB_TRANSITIONS,
                source=JobStatus.PARKED,
                target=JobStatus.QUEUED,
                values={"run_at": now.replace(tzinfo=None)},
            )
        await session.rollback()


async def test_a_json_value_takes_sqlalchemys_update(session_factory: async_sessionmaker[AsyncSession]):
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    async with session_factory() as session:
        job = _parked(now)
        session.add(job)
        await swap_status(
            session,
            Job,
            job.id,
            table=JOB_TRANSITIONS,
            source=JobStatus.PARKED,
            target=JobStatus.QUEUED,
            values={"payload": {"n": 2, "note": "requeued"}},
        )
        stored = (await session.execute(select(Job.status, Job.payload).where(Job.id == job.id))).one()
        assert stored == (JobStatus.QUEUED, {"n": 2, "note": "requeued"})
        await session.rollback()
