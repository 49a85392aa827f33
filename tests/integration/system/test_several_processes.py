"""Two app processes and two workers on one PostgreSQL, as several machines would run them: a session made
on one process works on the other; patients racing for one slot across both processes get exactly one
booking; 1,000 emails are each sent exactly once by two workers; and a worker killed with SIGKILL mid-run
loses nothing (what it had leased is retried once its lease ends)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from benchmarks.server import environment, running_server, server_environment
from telehealth.accounts.security import current_totp_code
from telehealth.db.engine import transaction
from telehealth.lib.clock import SystemClock
from telehealth.notifications.service import queue_email
from telehealth.settings import PROJECT_ROOT
from tests.helpers import PASSWORD
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient


def start_worker(database_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "litestar", "--app", "app:app", "worker"],
        cwd=PROJECT_ROOT,
        env=server_environment(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def signed_in(base_url: str, email: str, *, totp_secret: str | None = None) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=30)
    await client.get("/sign-in")
    headers = {"x-csrftoken": client.cookies["csrftoken"]}
    answered = await client.post("/api/v1/auth/sign-in", json={"email": email, "password": PASSWORD}, headers=headers)
    assert answered.status_code == 200, answered.text
    if totp_secret:
        headers = {"x-csrftoken": client.cookies["csrftoken"]}  # the token is bound to the session signing in made
        assert (
            await client.post(
                "/api/v1/auth/two-factor/verify", json={"code": current_totp_code(totp_secret, at=datetime.now(UTC))}, headers=headers
            )
        ).status_code == 200
    return client


async def wait_for(predicate, *, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_two_app_processes_and_two_workers_share_one_database(database_url, session_factory, settings, smtp, stripe_fake):
    clock = SystemClock()  # the processes run on real time
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patients = [await screened_patient(session_factory, settings, clock, email=f"racer{i}@example.org") for i in range(10)]
    extra = {
        "SMTP_URL": smtp.url,
        "STRIPE_API_KEY": "sk_test_fake",
        "STRIPE_WEBHOOK_SECRET": stripe_fake.webhook_secret,
        "STRIPE_API_BASE": stripe_fake.base_url,
        "JOB_LEASE_SECONDS": "3",
        "LOGIN_ATTEMPTS_PER_IP_PER_15_MIN": "100000",
    }
    async with AsyncExitStack() as stack:
        stack.enter_context(environment(extra))
        first = await stack.enter_async_context(running_server(database_url))
        second = await stack.enter_async_context(running_server(database_url))

        # A session made on one process is honoured by the other (sessions live in PostgreSQL).
        client = await signed_in(first.base_url, patients[0].email)
        stack.push_async_callback(client.aclose)
        other = httpx.AsyncClient(base_url=second.base_url, cookies=client.cookies, timeout=30)
        stack.push_async_callback(other.aclose)
        me = await other.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["email"] == patients[0].email

        # Ten patients race for one slot, half through each process: exactly one booking.
        clients = [await signed_in((first, second)[i % 2].base_url, p.email) for i, p in enumerate(patients)]
        for c in clients:
            stack.push_async_callback(c.aclose)
        slots = (await clients[0].get("/api/v1/slots", params={"type": "consult", "clinician_id": str(prescriber.user_id)})).json()
        starts_at = slots[0]["starts_at"]
        body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": starts_at, "hold": True}
        answers = await asyncio.gather(
            *(c.post("/api/v1/appointments", json=body, headers={"x-csrftoken": c.cookies["csrftoken"]}) for c in clients)
        )
        codes = Counter(a.status_code for a in answers)
        assert codes == Counter({201: 1, 409: 9}), [a.text for a in answers if a.status_code not in (201, 409)]
        async with session_factory() as session:
            held = await session.scalar(
                text("SELECT count(*) FROM appointment WHERE status IN ('held', 'booked') AND clinician_id = :c"), {"c": prescriber.user_id}
            )
        assert held == 1

        # 1,000 emails through two workers: each sent exactly once.
        already = len(smtp.messages)
        async with transaction(session_factory) as session:
            for i in range(1000):
                await queue_email(
                    session, to=f"bulk{i}@example.org", template="portal_update", context={"recipient_name": f"Bulk {i}"}, now=clock.now()
                )
        workers = [start_worker(database_url), start_worker(database_url)]
        try:

            async def all_sent() -> bool:
                return len([m for m in smtp.messages[already:] if str(m["To"]).startswith("bulk")]) >= 1000

            await wait_for(all_sent, timeout=180, what="1,000 emails")
            await asyncio.sleep(2)  # a duplicate would arrive now
            sent = Counter(str(m["To"]) for m in smtp.messages[already:] if str(m["To"]).startswith("bulk"))
            assert len(sent) == 1000 and set(sent.values()) == {1}

            # A worker killed mid-run loses nothing: its leased jobs are retried by the other after the lease.
            already = len(smtp.messages)
            async with transaction(session_factory) as session:
                for i in range(300):
                    await queue_email(
                        session,
                        to=f"kill{i}@example.org",
                        template="portal_update",
                        context={"recipient_name": f"Kill {i}"},
                        now=clock.now(),
                    )

            async def some_sent() -> bool:
                return any(str(m["To"]).startswith("kill") for m in smtp.messages[already:])

            await wait_for(some_sent, timeout=60, what="the first emails of the second batch")
            os.kill(workers[0].pid, signal.SIGKILL)

            async def every_one_sent() -> bool:
                return len({str(m["To"]) for m in smtp.messages[already:] if str(m["To"]).startswith("kill")}) == 300

            await wait_for(every_one_sent, timeout=120, what="every email after the SIGKILL")

            # The killed worker may have sent its last email and died before marking the job done: that job is
            # retried once its 3-second lease lapses (a second copy: at least once), and then every job is done.
            async def every_job_done() -> bool:
                async with session_factory() as session:
                    left = await session.scalar(
                        text("SELECT count(*) FROM job WHERE kind = 'notifications.send_email' AND status <> 'done'")
                    )
                return left == 0

            await wait_for(every_job_done, timeout=60, what="every email job done after the killed worker's lease")
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    await asyncio.to_thread(worker.wait, 20)
                except subprocess.TimeoutExpired:
                    worker.kill()
