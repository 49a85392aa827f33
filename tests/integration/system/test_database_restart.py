"""PostgreSQL restarted under load (issue 9): while it is down every request answers 503 (never a 500 and
never a dropped connection), nothing is half-written, and the service resumes by itself without a restart.

The test runs its own PostgreSQL server (Debian's binaries, run as the `postgres` user, in a temporary
directory on a free port): stopping the shared one would break every other test. Several clients keep
joining the waiting list while the server is stopped twice, once politely (`pg_ctl stop -m fast`, which
ends every session) and once as a crash (`-m immediate`, recovery from the WAL at the next start)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from benchmarks.server import environment, free_port, running_server
from tests.integration.system.test_several_processes import start_worker
from telehealth.db.engine import make_engine
from telehealth.db.migrate import upgrade_database

BIN = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(not (BIN / "pg_ctl").exists() or not shutil.which("runuser"), reason="needs Debian's PostgreSQL 15 binaries")


class PrivatePostgres:
    """A throwaway cluster this test may stop and start at will."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="telehealth-restart-"))
        self.data = self.directory / "data"
        self.port = free_port()
        shutil.chown(self.directory, "postgres", "postgres")
        self._as_postgres(BIN / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync")

    def _as_postgres(self, *command: object) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._as_postgres(BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", self.directory / "server.log", "-w", "start")

    def stop(self, mode: str) -> None:
        self._as_postgres(BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
async def clinic_url(private_postgres: PrivatePostgres) -> str:
    admin = await asyncpg.connect(private_postgres.url())
    await admin.execute("CREATE DATABASE clinic")
    await admin.close()
    url = private_postgres.url("clinic")
    engine = make_engine(url)
    await upgrade_database(engine)
    await engine.dispose()
    return url


@pytest.fixture
def email_worker(clinic_url: str) -> Iterator[None]:
    """A `worker` process sending the joins' emails (to the development mailbox) through the restarts."""
    worker = start_worker(clinic_url)
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(20)


async def test_a_database_restart_under_load_answers_503_loses_nothing_and_recovers(
    private_postgres: PrivatePostgres, clinic_url: str, email_worker: None
):
    url = clinic_url

    answers: list[tuple[str, float, int, str]] = []  # (email, time, status, code)
    ready: list[tuple[float, int]] = []
    stop = asyncio.Event()
    run = uuid.uuid4().hex[:8]
    counter = iter(range(10**6))

    with environment({"WAITLIST_JOINS_PER_IP_PER_HOUR": "100000000"}):
        async with running_server(url) as server:

            async def joiner() -> None:
                async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                    await client.get("/sign-in")
                    headers = {"x-csrftoken": client.cookies["csrftoken"]}
                    while not stop.is_set():
                        email = f"restart-{run}-{next(counter)}@example.org"
                        body = {"first_name": "Rae", "last_name": "Start", "email": email, "state": "CA", "date_of_birth": "1985-01-01",
                                "consent_to_contact": True}  # fmt: skip
                        response = await client.post("/api/v1/waitlist/", json=body, headers=headers)
                        code = response.json().get("code", "") if response.headers.get("content-type", "").startswith("application/json") else ""
                        answers.append((email, time.monotonic(), response.status_code, code))
                        await asyncio.sleep(0.02)

            async def prober() -> None:
                async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                    while not stop.is_set():
                        ready.append((time.monotonic(), (await client.get("/ready")).status_code))
                        await asyncio.sleep(0.1)

            async def succeeding_after(moment: float, *, within: float) -> None:
                """Joins answered 202 again, by themselves, after `moment`."""
                deadline = time.monotonic() + within
                while sum(1 for _, at, status, _ in answers if at > moment and status == 202) < 5:
                    assert time.monotonic() < deadline, f"no recovery within {within:.0f} s: {Counter(s for _, at, s, _ in answers if at > moment)}"
                    await asyncio.sleep(0.2)

            load = [asyncio.create_task(joiner()) for _ in range(4)] + [asyncio.create_task(prober())]
            try:
                await succeeding_after(time.monotonic(), within=30)
                outages = []
                for mode in ("fast", "immediate"):
                    went_down = time.monotonic()
                    await asyncio.to_thread(private_postgres.stop, mode)
                    await asyncio.sleep(3)  # requests keep coming while it is down
                    came_back = time.monotonic()
                    await asyncio.to_thread(private_postgres.start)
                    outages.append((went_down, came_back))
                    await succeeding_after(time.monotonic(), within=45)
            finally:
                stop.set()
                await asyncio.gather(*load, return_exceptions=True)
            for task in load:
                assert task.exception() is None, f"a client lost its connection to the app: {task.exception()!r}"

        # The worker came through both restarts: every confirmation email is sent (to the development mailbox).
        async def emails_pending() -> int:
            connection = await asyncpg.connect(url)
            try:
                return await connection.fetchval("SELECT count(*) FROM job WHERE kind = 'notifications.send_email' AND status <> 'done'")
            finally:
                await connection.close()

        deadline = time.monotonic() + 60
        while (pending := await emails_pending()) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert pending == 0, f"{pending} emails not sent after the restarts"

    statuses = Counter(status for _, _, status, _ in answers)
    assert set(statuses) <= {202, 503}, f"answers other than 202 and 503: {statuses}"
    assert all(code == "service.unavailable" for _, _, status, code in answers if status == 503)
    for went_down, came_back in outages:
        during = [status for _, at, status, _ in answers if went_down + 0.5 < at < came_back]
        assert during and set(during) == {503}, f"while the database was down: {Counter(during)}"
        assert {status for at, status in ready if went_down + 0.5 < at < came_back} == {503}
    assert ready[-1][1] == 200

    # Nothing half-written: each join left its entry, its audit event and its email job together, or nothing.
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT e.email, (SELECT count(*) FROM audit_event a WHERE a.resource_type = 'waitlist_entry' AND a.resource_id = e.id::text) AS audits,"
            " (SELECT count(*) FROM job j WHERE j.dedupe_key = 'waitlist:waitlist_confirm:' || e.id::text) AS jobs"
            " FROM waitlist_entry e WHERE e.email LIKE $1",
            f"restart-{run}-%",
        )  # fmt: skip
    finally:
        await connection.close()
    stored = {row["email"]: (row["audits"], row["jobs"]) for row in rows}
    assert all(parts == (1, 1) for parts in stored.values()), [email for email, parts in stored.items() if parts != (1, 1)]
    accepted = {email for email, _, status, _ in answers if status == 202}
    assert accepted <= set(stored), "a join answered 202 but is not stored"
    # A 503 may still have committed (the connection broke after COMMIT was sent); such joins are whole, as checked above.
    assert len(set(stored) - accepted) <= len(outages) * 4, "more committed-but-503 joins than requests in flight at the outages"
