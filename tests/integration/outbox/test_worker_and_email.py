"""The outbox and its worker: transactional enqueue, exactly-once claims, retries, parking, SMTP outages."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, text

from telehealth.db.engine import transaction
from telehealth.notifications.service import queue_email
from telehealth.outbox.models import Job
from telehealth.outbox.worker import claim_due_jobs, run_due_jobs
from tests.conftest import with_settings
from tests.fakes.smtp import SmtpServer, free_port
from tests.helpers import drain_jobs, worker_context


async def _queue(session_factory, clock, count, *, prefix="person"):
    async with transaction(session_factory) as session:
        for index in range(count):
            await queue_email(
                session,
                to=f"{prefix}{index}@example.org",
                template="portal_update",
                context={"recipient_name": f"Person {index}"},
                now=clock.now(),
            )


async def test_an_email_queued_in_a_rolled_back_transaction_is_never_sent(session_factory, settings, clock, smtp):
    async with session_factory() as session:
        await queue_email(session, to="a@example.org", template="portal_update", context={"recipient_name": "A"}, now=clock.now())
        await session.rollback()
    assert await drain_jobs(worker_context(session_factory, settings, clock)) == 0
    assert smtp.messages == []


async def test_a_committed_email_is_delivered_with_text_and_html(session_factory, settings, clock, smtp):
    await _queue(session_factory, clock, 1)
    assert await drain_jobs(worker_context(session_factory, settings, clock)) == 1
    [message] = smtp.messages
    assert message["To"] == "person0@example.org"
    assert message["Subject"] == "You have an update in your Evergreen Home Program portal"
    assert message.get_body(preferencelist=("html",)) is not None
    assert "You have an update in your portal" in smtp.text_of(message)
    async with session_factory() as session:
        job = (await session.execute(select(Job))).scalar_one()
    assert (job.status, job.payload) == ("done", {})  # the address and links do not outlive the send


async def test_jobs_due_at_the_same_moment_run_in_the_order_they_were_queued(session_factory, settings, clock, smtp):
    await _queue(session_factory, clock, 3)  # one request's emails: the same run_at, the clock being frozen
    async with transaction(session_factory) as session:
        # The first job's row rewritten (a change to an indexed column is never a HOT update): its new version lies after
        # the others in the table and in ix_job_due, so an order by run_at alone meets it last.
        await session.execute(
            text("UPDATE job SET dedupe_key = 'moved' WHERE payload->>'to' = 'person0@example.org'"),
        )
    assert await drain_jobs(worker_context(session_factory, settings, clock)) == 3
    assert [str(m["To"]) for m in smtp.messages] == [f"person{i}@example.org" for i in range(3)]


async def test_two_workers_over_200_jobs_send_each_exactly_once(session_factory, settings, clock, smtp):
    await _queue(session_factory, clock, 200)
    first, second = worker_context(session_factory, settings, clock), worker_context(session_factory, settings, clock)
    counts = await asyncio.gather(drain_jobs(first), drain_jobs(second))
    assert sum(counts) == 200
    assert all(count > 0 for count in counts), counts  # both really worked
    recipients = sorted(str(m["To"]) for m in smtp.messages)
    assert recipients == sorted(f"person{i}@example.org" for i in range(200))
    async with session_factory() as session:
        statuses = (await session.execute(text("SELECT status, count(*) FROM job GROUP BY status"))).all()
    assert statuses == [("done", 200)]


async def test_smtp_down_then_up_delivers_everything(session_factory, settings, clock):
    port = free_port()
    down = with_settings(settings, smtp_url=f"smtp://127.0.0.1:{port}")
    await _queue(session_factory, clock, 3)
    context = worker_context(session_factory, down, clock)
    assert await drain_jobs(context) == 3  # each tried once, then backing off
    async with session_factory() as session:
        jobs = (await session.execute(select(Job))).scalars().all()
    assert {(job.status, job.attempts) for job in jobs} == {("queued", 1)}
    assert all("ConnectionRefused" in job.last_error or "SMTPConnect" in job.last_error for job in jobs)
    assert await run_due_jobs(context) == 0  # backing off, not hammering

    server = SmtpServer(port)
    server.start()
    try:
        clock.advance(timedelta(minutes=10))
        assert await drain_jobs(context) == 3
        assert len(server.messages) == 3
    finally:
        server.stop()


async def test_a_job_that_keeps_failing_is_parked(session_factory, settings, clock):
    down = with_settings(settings, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    async with transaction(session_factory) as session:
        await session.execute(text("SELECT 1"))
    await _queue(session_factory, clock, 1)
    async with session_factory() as session:
        await session.execute(text("UPDATE job SET max_attempts = 3"))
        await session.commit()
    context = worker_context(session_factory, down, clock)
    for _ in range(3):
        await run_due_jobs(context)
        clock.advance(timedelta(hours=1))
    async with session_factory() as session:
        job = (await session.execute(select(Job))).scalar_one()
    assert (job.status, job.attempts) == ("parked", 3)
    assert await run_due_jobs(context) == 0


async def test_a_lapsed_lease_is_claimed_again_and_the_old_worker_cannot_finish_it(session_factory, settings, clock, smtp):
    await _queue(session_factory, clock, 1)
    crashed = worker_context(session_factory, settings, clock)
    [lost] = await claim_due_jobs(crashed)  # claimed, then the worker "dies"
    clock.advance(timedelta(seconds=settings.job_lease_seconds - 1))
    assert await claim_due_jobs(worker_context(session_factory, settings, clock)) == []  # lease still held
    clock.advance(timedelta(seconds=2))
    assert await drain_jobs(worker_context(session_factory, settings, clock)) == 1
    assert len(smtp.messages) == 1
    from telehealth.outbox.worker import run_claimed_job

    await run_claimed_job(crashed, lost)  # the stale worker wakes up: sends, but cannot rewrite the job
    async with session_factory() as session:
        job = (await session.execute(select(Job))).scalar_one()
    assert (job.status, job.attempts) == ("done", 2)


async def test_a_dedupe_key_keeps_one_live_job(session_factory, clock):
    async with transaction(session_factory) as session:
        first = await queue_email(
            session, to="a@example.org", template="portal_update", context={"recipient_name": "A"}, now=clock.now(), dedupe_key="k1"
        )
        second = await queue_email(
            session, to="a@example.org", template="portal_update", context={"recipient_name": "A"}, now=clock.now(), dedupe_key="k1"
        )
    assert (first, second) == (True, False)
