"""Periodic jobs are enqueued once per period across workers; housekeeping deletes only what is old."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, text

from telehealth.accounts.models import AccountToken, UserSession
from telehealth.accounts.roles import Role
from telehealth.outbox.models import Job
from telehealth.outbox.schedule import PERIODIC_JOBS, enqueue_due_periodic_jobs
from telehealth.system.models import RateLimitEvent
from tests.helpers import drain_jobs, make_person, worker_context


async def _count_jobs(session_factory, kind):
    async with session_factory() as session:
        return await session.scalar(select(func.count()).select_from(Job).where(Job.kind == kind))


async def test_each_periodic_job_is_enqueued_once_per_period_across_workers(session_factory, settings, clock):
    contexts = [worker_context(session_factory, settings, clock) for _ in range(3)]
    counts = await asyncio.gather(*(enqueue_due_periodic_jobs(context) for context in contexts))
    assert sum(counts) == len(PERIODIC_JOBS) >= 2
    assert await enqueue_due_periodic_jobs(contexts[0]) == 0  # not due again yet
    clock.advance(timedelta(hours=1))
    assert await enqueue_due_periodic_jobs(contexts[1]) == 0  # the last run has not run yet: no pile-up
    await drain_jobs(contexts[2])
    clock.advance(timedelta(hours=1))
    hourly_or_more_often = [job for job in PERIODIC_JOBS.values() if job.every <= timedelta(hours=1)]
    assert await enqueue_due_periodic_jobs(contexts[1]) == len(hourly_or_more_often)  # daily jobs wait their day
    assert await _count_jobs(session_factory, "outbox.prune_finished") == 2


async def test_housekeeping_deletes_old_sign_in_data_and_finished_jobs_only(session_factory, settings, clock):
    from telehealth.accounts.sessions import start_session
    from telehealth.db.engine import transaction
    from telehealth.notifications.service import queue_email

    person = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    long_ago = clock.now() - timedelta(days=10)
    async with transaction(session_factory) as session:
        from telehealth.accounts.models import UserAccount

        user = await session.get(UserAccount, person.user_id)
        await start_session(session, user=user, ip="1.2.3.4", user_agent=None, now=long_ago, settings=settings)
        await start_session(session, user=user, ip="1.2.3.4", user_agent=None, now=clock.now(), settings=settings)
        session.add(RateLimitEvent(bucket="sign_in", key="1.2.3.4", occurred_at=long_ago))
        session.add(RateLimitEvent(bucket="sign_in", key="1.2.3.4", occurred_at=clock.now()))
        session.add(AccountToken(user_id=user.id, purpose="reset_password", token_hash="a" * 64, created_at=long_ago, expires_at=long_ago))
        session.add(
            AccountToken(
                user_id=user.id,
                purpose="reset_password",
                token_hash="b" * 64,
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(minutes=30),
            )
        )
        await queue_email(session, to="a@example.org", template="portal_update", context={"recipient_name": "A"}, now=long_ago)
    context = worker_context(session_factory, settings, clock)
    await drain_jobs(context)  # sends the old email: a done job
    async with session_factory() as session:
        await session.execute(text("UPDATE job SET finished_at = :at WHERE status = 'done'"), {"at": long_ago})
        await session.commit()
    await enqueue_due_periodic_jobs(context)
    await drain_jobs(context)
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(UserSession)) == 1
        assert await session.scalar(select(func.count()).select_from(RateLimitEvent)) == 1
        assert (await session.execute(select(AccountToken.token_hash))).scalars().all() == ["b" * 64]
        kinds = (await session.execute(select(Job.kind, Job.status))).all()
    assert sorted(kinds) == sorted((kind, "done") for kind in PERIODIC_JOBS)  # the old email job is gone
