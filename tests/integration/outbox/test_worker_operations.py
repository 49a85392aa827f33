"""Worker operations: N jobs at once, one SMTP connection for many messages, due times and leases in the
database's clock, and the operator's `jobs list|show|requeue` commands."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from telehealth.audit.models import AuditEvent
from telehealth.audit.service import record_audit_event
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from telehealth.lib.clock import SystemClock, utc_now
from telehealth.lib.errors import Conflict
from telehealth.notifications.service import queue_email
from telehealth.outbox import schedule
from telehealth.outbox.models import Job
from telehealth.outbox.service import enqueue_job, requeue_parked_job
from telehealth.outbox.worker import WorkerContext, claim_due_jobs, job_handler, run_due_jobs, run_worker
from tests.conftest import with_settings
from tests.fakes.smtp import SmtpServer, free_port
from tests.helpers import drain_jobs, worker_context

RENDEZVOUS_JOB = "tests.rendezvous"


class Rendezvous:
    """Jobs that each wait until `expected` of them are running at the same time (or the test releases them)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.all_arrived = asyncio.Event()
        self.release = asyncio.Event()


RENDEZVOUS: dict[str, Rendezvous] = {}


@job_handler(RENDEZVOUS_JOB)
async def meet_the_others(context: WorkerContext, payload: dict[str, Any]) -> None:
    meeting = RENDEZVOUS["current"]
    meeting.arrived += 1
    if meeting.arrived == meeting.expected:
        meeting.all_arrived.set()
    await meeting.release.wait()


async def _job_statuses(session_factory, kind):
    async with session_factory() as session:
        rows = (await session.execute(select(Job.status, func.count()).where(Job.kind == kind).group_by(Job.status))).all()
    return dict(rows)


async def test_a_worker_runs_worker_concurrency_jobs_at_once_and_no_more(session_factory, settings, clock, monkeypatch):
    monkeypatch.setattr(schedule, "PERIODIC_JOBS", {})  # only the jobs of this test take slots
    meeting = RENDEZVOUS["current"] = Rendezvous(expected=2)
    async with transaction(session_factory) as session:
        for _ in range(3):
            await enqueue_job(session, kind=RENDEZVOUS_JOB, payload={}, now=clock.now())
    context = worker_context(session_factory, with_settings(settings, worker_concurrency=2), clock)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(context, stop, poll_seconds=0.05))
    try:
        # Run one at a time, the first job would wait for a second that never starts (guard: no timing asserted).
        await asyncio.wait_for(meeting.all_arrived.wait(), timeout=20)
        assert meeting.arrived == 2
        assert await _job_statuses(session_factory, RENDEZVOUS_JOB) == {"running": 2, "queued": 1}  # two slots, not three
        meeting.release.set()
        while (await _job_statuses(session_factory, RENDEZVOUS_JOB)) != {"done": 3}:
            await asyncio.sleep(0.05)
    finally:
        meeting.release.set()
        stop.set()
        await asyncio.wait_for(worker, timeout=20)
    assert meeting.arrived == 3


async def test_one_smtp_connection_carries_many_messages_and_is_replaced_when_the_server_restarts(session_factory, settings, clock):
    port = free_port()
    first_server = SmtpServer(port)
    first_server.start()
    context = worker_context(session_factory, with_settings(settings, smtp_url=f"smtp://127.0.0.1:{port}"), clock)
    try:
        async with transaction(session_factory) as session:
            for index in range(6):
                await queue_email(
                    session, to=f"p{index}@example.org", template="portal_update", context={"recipient_name": "P"}, now=clock.now()
                )
        while await run_due_jobs(context, batch_size=3):  # three jobs at a time share the one connection
            pass
        assert len(first_server.messages) == 6
        assert first_server.connections_used == 1
    finally:
        first_server.stop()  # the kept connection is now dead, and the mailer has not noticed yet

    second_server = SmtpServer(port)
    second_server.start()
    try:
        async with transaction(session_factory) as session:
            for index in range(2):
                await queue_email(
                    session, to=f"q{index}@example.org", template="portal_update", context={"recipient_name": "Q"}, now=clock.now()
                )
        assert await drain_jobs(context) == 2
        assert len(second_server.messages) == 2
        assert second_server.connections_used == 1
        async with session_factory() as session:
            attempts = (await session.execute(select(Job.status, Job.attempts).where(Job.status != "done"))).all()
        assert attempts == []  # no job failed on the dead connection: the mailer reconnected and sent
    finally:
        await context.services["mailer"].close()
        second_server.stop()


async def test_a_kept_connection_the_server_closes_is_replaced_without_failing_the_job(session_factory, settings, clock):
    server = SmtpServer(messages_per_connection=2)  # then "421 closing", as a server ending an idle client does
    server.start()
    context = worker_context(session_factory, with_settings(settings, smtp_url=server.url), clock)
    try:
        async with transaction(session_factory) as session:
            for index in range(5):
                await queue_email(
                    session, to=f"p{index}@example.org", template="portal_update", context={"recipient_name": "P"}, now=clock.now()
                )
        assert await drain_jobs(context) == 5
        assert len(server.messages) == 5
        assert server.connections_used == 3  # 2 + 2 + 1
        async with session_factory() as session:
            assert await session.scalar(select(func.max(Job.attempts))) == 1  # each sent on its first attempt
    finally:
        await context.services["mailer"].close()
        server.stop()


class ClockRunningADayFast(SystemClock):
    """The real clock of a process whose machine's time is a day ahead."""

    def now(self):  # type: ignore[no-untyped-def]
        return utc_now() + timedelta(days=1)


async def test_due_times_and_leases_follow_the_database_clock_not_the_process_clock(session_factory, settings, smtp):
    fast = ClockRunningADayFast()
    async with transaction(session_factory) as session:
        await queue_email(session, to="a@example.org", template="portal_update", context={"recipient_name": "A"}, now=fast.now())
        await session.execute(text("UPDATE job SET run_at = now() + interval '1 hour'"))
    context = worker_context(session_factory, settings, fast)
    assert await claim_due_jobs(context) == []  # due in an hour by the database, whatever this process believes
    async with session_factory() as session:
        await session.execute(text("UPDATE job SET run_at = now() - interval '1 second'"))
        await session.commit()
    [_claimed] = await claim_due_jobs(context)
    async with session_factory() as session:
        lease_left = await session.scalar(text("SELECT extract(epoch FROM lease_until - now()) FROM job"))
    assert 0 < lease_left <= settings.job_lease_seconds  # the lease ends by the database's clock, not a day later
    assert await claim_due_jobs(context) == []  # and another worker with the same fast clock cannot take it


async def _park_one_email(session_factory, settings, clock, *, to="parked@example.org", dedupe_key=None):
    async with transaction(session_factory) as session:
        await queue_email(session, to=to, template="portal_update", context={"recipient_name": "P"}, now=clock.now(), dedupe_key=dedupe_key)
        await session.execute(text("UPDATE job SET max_attempts = 1 WHERE status = 'queued'"))
    down = with_settings(settings, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    await drain_jobs(worker_context(session_factory, down, clock))
    async with session_factory() as session:
        job = (await session.execute(select(Job).where(Job.status == "parked").order_by(Job.created_at.desc()))).scalars().first()
    assert job is not None
    return job


async def _cli(args, database_url, monkeypatch):
    from telehealth import cli
    from telehealth.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        return await asyncio.to_thread(CliRunner().invoke, cli.jobs_group, args)
    finally:
        get_settings.cache_clear()


async def test_operator_lists_shows_and_requeues_a_parked_job(database_url, session_factory, settings, clock, smtp, monkeypatch):
    parked = await _park_one_email(session_factory, settings, clock)
    async with transaction(session_factory) as session:
        await queue_email(
            session, to="later@example.org", template="portal_update", context={"recipient_name": "L"}, now=clock.now(), dedupe_key="later"
        )

    listed = await _cli(["list", "--parked"], database_url, monkeypatch)
    assert listed.exit_code == 0, listed.output
    assert str(parked.id) in listed.output and "1 parked job." in listed.output
    assert "SMTPConnectError" in listed.output or "ConnectionRefused" in listed.output
    everything = await _cli(["list"], database_url, monkeypatch)
    assert "2 jobs." in everything.output and "queued" in everything.output

    shown = await _cli(["show", str(parked.id)], database_url, monkeypatch)
    assert shown.exit_code == 0, shown.output
    assert "parked" in shown.output and "payload keys  attachments, context, template, to" in shown.output
    assert "parked@example.org" not in shown.output  # the address only on request
    assert "parked@example.org" in (await _cli(["show", str(parked.id), "--payload"], database_url, monkeypatch)).output

    requeued = await _cli(["requeue", str(parked.id)], database_url, monkeypatch)
    assert requeued.exit_code == 0, requeued.output
    async with session_factory() as session:
        job = await session.get(Job, parked.id)
        events = (await session.execute(select(AuditEvent.action, AuditEvent.actor_role, AuditEvent.resource_id))).all()
    assert (job.status, job.attempts, job.finished_at, job.last_error is not None) == ("queued", 0, None, True)
    assert events == [("job.requeue", "operator", str(parked.id))]
    clock.set(max(clock.now(), utc_now()) + timedelta(minutes=1))  # the command queued it at the real time
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert sorted(str(message["To"]) for message in smtp.messages) == ["later@example.org", "parked@example.org"]

    again = await _cli(["requeue", str(parked.id)], database_url, monkeypatch)
    assert again.exit_code == 1 and "cannot go from done to queued" in again.output
    unknown = await _cli(["show", "00000000-0000-4000-8000-000000000000"], database_url, monkeypatch)
    assert unknown.exit_code == 1 and "There is no job" in unknown.output
    malformed = await _cli(["requeue", "42"], database_url, monkeypatch)
    assert malformed.exit_code == 2 and "JOB_ID" in malformed.output


async def test_requeue_is_refused_while_a_live_job_holds_the_same_dedupe_key(session_factory, settings, clock):
    parked = await _park_one_email(session_factory, settings, clock, dedupe_key="reminder:1")
    async with transaction(session_factory) as session:
        assert await queue_email(
            session, to="a@example.org", template="portal_update", context={"recipient_name": "A"}, now=clock.now(), dedupe_key="reminder:1"
        )
    async with transaction(session_factory) as session:
        with pytest.raises(Conflict) as refusal:
            await requeue_parked_job(
                session, parked.id, actor=Actor(None, "operator"), now=clock.now(), record_audit_event=record_audit_event
            )
        await session.execute(text("SELECT 1"))  # the caller's transaction survived the refusal
    assert refusal.value.code == "job.duplicate_live"
    async with session_factory() as session:
        assert (await session.get(Job, parked.id)).status == "parked"
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 0
