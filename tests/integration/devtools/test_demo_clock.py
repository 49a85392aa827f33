"""The demo's movable clock (issue 23 item 11): staff move it on /dev/clock and the app, and its worker, see the
moved time (a held slot lapses after +1 hour); everyone stays signed in and two-factor codes stay those of real
time; a banner says so on every page; back to real time ends it. Refused (404) in production and with a
DATABASE_URL unless DEMO_CLOCK=true; refused to patients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text

from telehealth.accounts.roles import Role
from telehealth.db.clock import database_now
from telehealth.lib.clock import OffsetClock, SystemClock, forget_demo_offset
from telehealth.scheduling.models import Appointment
from telehealth.settings import SettingsError
from tests.conftest import echo_current_csrf_token, with_settings
from tests.helpers import csrf_headers, form_csrf_token, make_person, sign_in, worker_context
from tests.integration.dosing.helpers import another_device
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient
from tests.integration.scheduling.test_booking import _slots

SLOT = "2026-11-24T15:00:00Z"


@pytest.fixture(autouse=True)
def real_time_for_authenticators_afterwards():
    """A moved clock's offset is noted for the two-factor check (lib/clock.authenticator_time): forget it after each
    test, so a test of this module that stops half-way leaves nothing behind for the next ones."""
    yield
    forget_demo_offset()


@asynccontextmanager
async def app_client(settings, clock) -> AsyncIterator[AsyncTestClient]:
    from telehealth.asgi import create_app

    app = create_app(settings, clock=clock)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        client.event_hooks = {"request": [echo_current_csrf_token(client)], "response": []}
        yield client


async def move(client, step: str):
    page = await client.get("/dev/clock/")
    assert page.status_code == 200, page.text
    return await client.post(
        "/dev/clock/",
        data={"step": step, "_csrf_token": form_csrf_token(page.text)},
        headers={"accept": "text/html"},
        follow_redirects=False,
    )


async def test_moving_the_demo_clock_an_hour_lapses_a_held_slot_for_the_app_and_its_worker(settings, session_factory, clock):
    from telehealth.scheduling.jobs import expire_holds

    demo = with_settings(settings, demo_clock=True)  # a DATABASE_URL: only with DEMO_CLOCK=true
    prescriber = await prescriber_with_hours(session_factory, demo, clock)
    holder = await screened_patient(session_factory, demo, clock, email="holder@example.org")
    other = await screened_patient(session_factory, demo, clock, email="other@example.org")
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="coord@example.org", now=clock.now(), settings=demo)
    async with app_client(demo, clock) as patient_client:
        desk = another_device(patient_client, ip="192.0.2.10", user_agent="Mozilla/5.0 (the clinic's desk)")  # the same app
        await sign_in(patient_client, holder, clock)
        body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": SLOT, "hold": True}
        held = await patient_client.post("/api/v1/appointments", json=body, headers=await csrf_headers(patient_client))
        assert held.json()["hold_expires_at"] == "2026-11-23T15:30:00Z"
        patient_client.cookies.clear()
        await sign_in(patient_client, other, clock)
        assert SLOT not in {s["starts_at"] for s in await _slots(patient_client)}
        assert "Demo time" not in (await patient_client.get("/patient")).text  # not moved: no banner

        await sign_in(desk, coordinator, clock)
        moved = await move(desk, "hour")
        assert (moved.status_code, moved.headers["location"]) == (302, "/dev/clock?moved=hour")
        page = await desk.get("/dev/clock/?moved=hour")
        assert "Done: +1 hour." in page.text and '<dd id="demo-offset">+1 hour</dd>' in page.text

        # The patient, still signed in across the jump, now finds the slot free: the hold lapsed at the demo's time.
        assert SLOT in {s["starts_at"] for s in await _slots(patient_client)}
        banner = (await patient_client.get("/patient")).text
        assert "Demo time: Mon 23 Nov 2026, 11:00 EST (moved +1 hour)" in banner
        # The worker, on the same clock, expires the hold.
        app_clock = patient_client.app.state.clock
        await expire_holds(worker_context(session_factory, demo, app_clock), {})
        async with session_factory() as session:
            assert (await session.execute(select(Appointment.status))).scalars().all() == ["expired"]
            stored = (await session.execute(text("SELECT offset_seconds FROM demo_clock"))).scalar_one()
            moves = (await session.execute(text("SELECT reason FROM audit_event WHERE action = 'demo_clock.move'"))).scalars().all()
        assert (stored, moves) == (3600, ["hour:3600s"])

        # A staff member signing in now gives the code their authenticator shows: real time's.
        await move(desk, "two_days")
        desk.cookies.clear()
        clock.advance(timedelta(seconds=30))  # real time moves on a little: a fresh code (a code is used once)
        await sign_in(desk, coordinator, clock)
        assert "(moved +2 days 1 hour)" in (await desk.get("/dev/clock/")).text

        back = await move(desk, "real")
        assert back.status_code == 302
        assert "Demo time" not in (await patient_client.get("/patient")).text
        refused = await move(desk, "sideways")
        assert refused.status_code == 422 and "Choose how far to move the clock." in refused.text


async def test_a_process_follows_the_stored_offset(settings, session_factory, clock):
    """The worker process and the web process agree: another process's clock picks up the stored offset."""
    from telehealth.devtools.demo_clock import refresh_offset

    demo = with_settings(settings, demo_clock=True)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="coord@example.org", now=clock.now(), settings=demo)
    async with app_client(demo, clock) as desk:
        await sign_in(desk, coordinator, clock)
        await move(desk, "day")
    elsewhere = OffsetClock(clock)  # e.g. `telehealth worker` in its own process
    await refresh_offset(session_factory, elsewhere)
    assert elsewhere.now() - clock.now() == timedelta(days=1)
    async with session_factory() as session:  # the worker's SQL compares against the database's now(), moved
        real, moved = (
            await session.execute(select(database_now(SystemClock()), database_now(OffsetClock(SystemClock(), timedelta(days=1)))))
        ).one()
    assert timedelta(hours=23) < moved - real <= timedelta(days=1)


async def test_refused_without_demo_clock_with_a_database_url_in_production_and_to_patients(settings, session_factory, clock, tmp_path):
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="coord@example.org", now=clock.now(), settings=settings)
    patient = await screened_patient(session_factory, settings, clock, email="pat@example.org")
    async with app_client(settings, clock) as client:  # a DATABASE_URL, DEMO_CLOCK unset
        await sign_in(client, coordinator, clock)
        assert (await client.get("/dev/clock/")).status_code == 404
        posted = await client.post("/dev/clock/", data={"step": "hour"}, headers={"accept": "text/html", **await csrf_headers(client)})
        assert posted.status_code == 404
    async with app_client(with_settings(settings, demo_clock=True), clock) as client:
        assert (await client.get("/dev/clock/", follow_redirects=False)).status_code in (302, 303, 401)  # nobody signed in
        await sign_in(client, patient, clock)
        assert (await client.get("/dev/clock/")).status_code == 403
        assert (
            await client.post("/dev/clock/", data={"step": "hour"}, headers={"accept": "text/html", **await csrf_headers(client)})
        ).status_code == 403
    async with session_factory() as session:
        assert (await session.execute(text("SELECT count(*) FROM demo_clock"))).scalar_one() == 0
    # Production: never, even with DEMO_CLOCK=true (refused at start) or with the embedded database.
    with pytest.raises(SettingsError, match="DEMO_CLOCK"):
        with_settings(settings, environment="production", demo_clock=True, secret_key="x" * 40).validate()
    assert not with_settings(settings, environment="production", database_url=None).demo_clock_enabled
    assert with_settings(settings, environment="development", database_url=None).demo_clock_enabled
