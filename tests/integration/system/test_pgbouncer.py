"""Through a real PgBouncer in transaction mode (Debian's package, 1.18: no prepared statements of its own):
bookings race and exactly one wins, workers send each email once, the app serves signed-in requests.
Skipped when pgbouncer is not installed, unless REQUIRE_PGBOUNCER=1 (CI) makes that a failure."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from telehealth.accounts.models import Patient
from telehealth.booking.service import may_book
from telehealth.db.engine import async_database_url, make_engine, make_session_factory, transaction
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict
from telehealth.notifications.service import queue_email
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.service import take_slot
from telehealth.scheduling.states import AppointmentType
from tests.conftest import with_settings
from tests.fakes.smtp import free_port
from tests.helpers import csrf_headers, drain_jobs, send_in_thread, sign_in, worker_context
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient
from tests.integration.scheduling.test_booking import TUESDAY_TEN_NY

SERVER_CONNECTIONS = 3  # fewer than the clients: they must share server connections, transaction by transaction


def _pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None


def _start_pgbouncer(database_url: str, pool_size: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    binary = _pgbouncer_binary()
    if binary is None:
        if os.environ.get("REQUIRE_PGBOUNCER") == "1":
            pytest.fail("REQUIRE_PGBOUNCER=1 but no pgbouncer on PATH or at /usr/sbin/pgbouncer (apt-get install pgbouncer)")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer); set REQUIRE_PGBOUNCER=1 to make this a failure")
    url = make_url(async_database_url(database_url))
    host = url.query.get("host") or url.host or "127.0.0.1"  # a Unix socket directory for the embedded server
    user = url.username or "postgres"
    # PgBouncer refuses to run as root; it then runs as another user, so its files live in a directory all can read.
    work = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    work.chmod(0o755)
    port = free_port()
    (work / "users.txt").write_text(f'"{user}" "{url.password or ""}"\n')
    (work / "pgbouncer.ini").write_text(
        f"[databases]\n{url.database} = host={host} port={url.port or 5432} dbname={url.database}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {work / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 200\n"
        "server_lifetime = 3600\nlogfile =\npidfile =\n"
    )
    for file in work.iterdir():
        file.chmod(0o644)
    command = [binary, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:  # as nobody; beside the embedded server (a socket in its private directory) as its owner
        owner = Path(host).owner() if host.startswith("/") else "root"
        command = ["runuser", "-u", owner if owner != "root" else "nobody", "--", *command]
    log = (work / "pgbouncer.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited: {(work / 'pgbouncer.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail(f"pgbouncer did not listen: {(work / 'pgbouncer.log').read_text()}")
    through = url.set(host="127.0.0.1", port=port, query={}).render_as_string(hide_password=False)
    return process, through, work


@pytest.fixture
def pgbouncer(database_url: str) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of the test database: its URL."""
    process, through, work = _start_pgbouncer(database_url, SERVER_CONNECTIONS)
    try:
        yield through
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(work, ignore_errors=True)


async def test_the_default_engine_breaks_through_transaction_pooling_so_the_setting_is_needed(pgbouncer):
    """What DATABASE_POOL_MODE=transaction is for: asyncpg's numbered prepared statements collide when two
    clients' transactions share one server connection. (Also shows this PgBouncer really pools by transaction.)"""
    engine = make_engine(pgbouncer, pool_size=4)
    try:

        async def query(n: int) -> None:
            async with engine.connect() as connection:
                for _ in range(5):
                    await connection.execute(text("SELECT count(*) FROM job WHERE kind = :kind"), {"kind": f"k{n}"})
                    await connection.commit()

        with pytest.raises(DBAPIError, match="prepared statement"):
            await asyncio.gather(*(query(n) for n in range(4)))
    finally:
        await engine.dispose()


async def test_racing_bookings_through_pgbouncer_give_exactly_one(pgbouncer, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patients = [await screened_patient(session_factory, settings, clock, email=f"p{i}@example.org") for i in range(12)]
    engine = make_engine(pgbouncer, pool_size=12, transaction_pooling=True)  # twelve clients, three server connections
    factory = make_session_factory(engine)

    async def attempt(person, starts_at) -> str:
        try:
            async with transaction(factory) as session:
                record = await session.get(Patient, person.patient_id)
                # The gates, then the slot, as booking.service books (its fee aside: these race for the slot itself).
                await may_book(session, patient=record, appointment_type=AppointmentType.CONSULT)
                await take_slot(
                    session,
                    patient=record,
                    clinician_id=prescriber.user_id,
                    appointment_type=AppointmentType.CONSULT,
                    starts_at=starts_at,
                    hold=False,
                    actor=Actor.system(),
                    now=clock.now(),
                    settings=settings,
                )
            return "booked"
        except Conflict as refusal:
            return refusal.code

    try:  # two rounds: each client connection runs several transactions, on whichever server PgBouncer gives it
        for starts_at in (TUESDAY_TEN_NY, TUESDAY_TEN_NY + timedelta(hours=2)):
            outcomes = await asyncio.gather(*(attempt(p, starts_at) for p in patients))
            assert outcomes.count("booked") == 1, outcomes
            assert outcomes.count("appointment.slot_taken") == 11, outcomes
    finally:
        await engine.dispose()
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 2


async def test_the_app_through_pgbouncer_signs_in_and_two_patients_race_for_one_slot(
    pgbouncer, database_url, session_factory, settings, clock
):
    """The whole app on DATABASE_URL=PgBouncer: the session middleware, sign-in, the request's transaction; two
    signed-in patients post the same slot at once and exactly one gets it."""
    from litestar.testing import AsyncTestClient

    from telehealth.asgi import create_app

    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    first = await screened_patient(session_factory, settings, clock, email="first@example.org")
    second = await screened_patient(session_factory, settings, clock, email="second@example.org")
    pooled = with_settings(
        settings, database_url=pgbouncer, database_pool_mode="transaction", database_direct_url=database_url, database_pool_size=6
    )
    body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"}
    async with AsyncTestClient(app=create_app(pooled, clock=clock), base_url="http://testserver.local") as client:
        requests = []
        for person in (first, second):
            client.cookies.clear()
            await sign_in(client, person, clock)
            headers = await csrf_headers(client)
            cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
            client.cookies.clear()
            requests.append(client.build_request("POST", "/api/v1/appointments", json=body, headers=headers | {"cookie": cookie}))
        responses = await asyncio.gather(*[await send_in_thread(client, request) for request in requests])
        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        assert (await client.get("/ready")).status_code == 200
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 1


async def test_two_workers_through_pgbouncer_send_each_email_once(pgbouncer, session_factory, settings, clock, smtp):
    async with transaction(session_factory) as session:
        for index in range(60):
            await queue_email(
                session,
                to=f"person{index}@example.org",
                template="portal_update",
                context={"recipient_name": f"Person {index}"},
                now=clock.now(),
            )
    engine = make_engine(pgbouncer, pool_size=4, transaction_pooling=True)
    factory = make_session_factory(engine)
    try:
        counts = await asyncio.gather(
            drain_jobs(worker_context(factory, settings, clock)), drain_jobs(worker_context(factory, settings, clock))
        )
    finally:
        await engine.dispose()
    assert sum(counts) == 60
    assert sorted(str(m["To"]) for m in smtp.messages) == sorted(f"person{i}@example.org" for i in range(60))
    async with session_factory() as session:
        assert (await session.execute(text("SELECT status, count(*) FROM job GROUP BY status"))).all() == [("done", 60)]
