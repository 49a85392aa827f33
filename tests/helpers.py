"""Shared test steps: accounts in the database, signing in through the real endpoints, running the worker."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import telehealth.jobs  # noqa: F401  (registers every job handler)
from telehealth.accounts.models import Patient
from telehealth.accounts.roles import STAFF_ROLES, Role
from telehealth.accounts.security import current_totp_code, new_totp_secret
from telehealth.accounts.service import create_account
from telehealth.accounts.totp_secrets import TotpKeyring, seal
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.notifications.mailer import Mailer, SmtpMailer
from telehealth.outbox.worker import WorkerContext, run_due_jobs
from telehealth.settings import Settings

PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    user_id: object
    email: str
    role: Role
    totp_secret: str | None
    patient_id: object | None = None


async def make_person(
    factory: async_sessionmaker[AsyncSession],
    *,
    role: Role,
    email: str,
    now: datetime,
    settings: Settings,
    enrol_two_factor: bool | None = None,
) -> Person:
    """An account with a verified email; staff get a confirmed TOTP secret unless told otherwise."""
    enrol = role in STAFF_ROLES if enrol_two_factor is None else enrol_two_factor
    async with transaction(factory) as session:
        user = await create_account(
            session,
            email=email,
            full_name=email.split("@")[0].title(),
            role=role,
            password=PASSWORD,
            actor=Actor.system(),
            now=now,
            settings=settings,
            email_verified=True,
        )
        secret = None
        if enrol:
            secret = new_totp_secret()
            user.totp_secret = seal(secret, user_id=user.id, keyring=TotpKeyring.from_settings(settings))  # stored as the app stores it
            user.totp_confirmed_at = now
        await session.flush()
        patient_id = None
        if role is Role.PATIENT:
            from sqlalchemy import select

            patient_id = (await session.execute(select(Patient.id).where(Patient.user_id == user.id))).scalar_one()
        return Person(user.id, user.email, role, secret, patient_id)


async def csrf_headers(client: AsyncTestClient) -> dict[str, str]:
    if "csrftoken" not in client.cookies:
        await client.get("/sign-in")
    return {"x-csrftoken": client.cookies["csrftoken"]}


async def sign_in(client: AsyncTestClient, person: Person, clock: Clock, *, password: str = PASSWORD) -> None:
    """Password, then (for staff) the current TOTP code, through the real API."""
    headers = await csrf_headers(client)
    response = await client.post("/api/v1/auth/sign-in", json={"email": person.email, "password": password}, headers=headers)
    assert response.status_code == 200, response.text
    if person.totp_secret:
        code = current_totp_code(person.totp_secret, at=clock.now())
        # signing in started a new session, and the CSRF token is bound to the session: read the new one
        response = await client.post("/api/v1/auth/two-factor/verify", json={"code": code}, headers=await csrf_headers(client))
        assert response.status_code == 200, response.text


def worker_context(
    factory: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock, mailer: Mailer | None = None
) -> WorkerContext:
    return WorkerContext(factory, settings, clock, services={"mailer": mailer or SmtpMailer(settings.smtp_url or "", timeout=5)})


async def drain_jobs(context: WorkerContext) -> int:
    total = 0
    while claimed := await run_due_jobs(context):
        total += claimed
    return total


def link_in(text: str, path: str) -> str:
    match = re.search(rf"https?://\S+{re.escape(path)}\?token=([\w\-]+)", text)
    assert match, f"no {path} link in: {text}"
    return match.group(1)


def form_csrf_token(page_html: str) -> str:
    """The CSRF token a rendered form carries (what a browser would post back)."""
    return page_html.split('name="_csrf_token" value="')[1].split('"')[0]


async def deliver_stripe_event(client, fake, event: dict, *, timestamp: int | None = None):
    """Post one event to the app's webhook, signed the way Stripe signs it."""
    import json
    import time

    from telehealth.devtools.stripe_stand_in import sign_payload

    payload = json.dumps(event)
    signature = sign_payload(payload, fake.webhook_secret, int(time.time()) if timestamp is None else timestamp)
    return await client.post(
        "/api/v1/billing/stripe/webhook", content=payload, headers={"stripe-signature": signature, "content-type": "application/json"}
    )


async def pay_checkout(client, fake, checkout_url: str, *, deliver: bool = True) -> dict:
    """What a patient does on Stripe's page, then Stripe's signed `checkout.session.completed` reaching us."""
    import asyncio

    session_id = checkout_url.rstrip("/").rsplit("/", 1)[-1]
    await asyncio.to_thread(fake.complete_checkout, session_id)
    event = next(e for e in reversed(fake.events) if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session_id)
    if deliver:
        response = await deliver_stripe_event(client, fake, event)
        assert response.status_code == 200, response.text
    return event


async def book_paid(client, fake, body: dict) -> dict:
    """Book an appointment through the API and pay for it when it costs something: the booked appointment."""
    response = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert response.status_code == 201, response.text
    booked = response.json()
    if booked.get("amount_cents"):  # held until paid: ask for the Checkout Session and pay it
        checkout = await client.post(f"/api/v1/billing/appointments/{booked['id']}/checkout", json={}, headers=await csrf_headers(client))
        assert checkout.status_code == 200, checkout.text
        await pay_checkout(client, fake, checkout.json()["checkout_url"])
        mine = (await client.get("/api/v1/appointments")).json()
        booked = next(a for a in mine if a["id"] == booked["id"])
    return booked


async def visit_took_place(factory: async_sessionmaker[AsyncSession], appointment_id, *, started_at: datetime) -> None:
    """The appointment's video visit started at `started_at` (both people in the built-in room), recorded the way
    the room records it (scheduling.visits.record_visit_started). The room itself: tests/e2e/test_video_room.py."""
    import uuid as _uuid

    from telehealth.scheduling.models import Appointment
    from telehealth.scheduling.visits import RoomPass, record_visit_started

    async with transaction(factory) as session:
        appointment = await session.get(Appointment, _uuid.UUID(str(appointment_id)))
        assert appointment is not None
        room = RoomPass(appointment.id, appointment.clinician_id, "clinician", appointment.ends_at)
        assert await record_visit_started(session, room, actor=Actor.system(), now=started_at), "the appointment is not booked"


async def join_care_team(
    factory: async_sessionmaker[AsyncSession], patient: Person, clinician: Person, *, now: datetime, because: str = "consult_booked"
) -> None:
    """Put a clinician on the patient's care team, as a booked consult or integration session would."""
    from telehealth.care_teams import service as care_teams

    async with transaction(factory) as session:
        await care_teams.join(session, patient_id=patient.patient_id, clinician_id=clinician.user_id, because=because, now=now)


async def lock_waiters(factory: async_sessionmaker[AsyncSession]) -> int:
    """How many connections to this test database wait on a lock right now (each look in a new transaction:
    pg_stat_activity is read once per transaction)."""
    from sqlalchemy import text

    async with factory() as session:
        return int(
            await session.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
            )
            or 0
        )


async def until_lock_waiters(factory: async_sessionmaker[AsyncSession], count: int, *, tasks=(), timeout: float = 10.0) -> bool:
    """Wait until `count` connections wait on a lock (a race test's way to know each contender is inside its
    transaction and blocked). False when every task in `tasks` finished first, or after `timeout` seconds:
    then nothing was blocked, which is what a race test shows when a lock is missing."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await lock_waiters(factory) >= count:
            return True
        if tasks and all(task.done() for task in tasks):
            return False
        await asyncio.sleep(0.01)
    return False


async def send_in_thread(client: AsyncTestClient, request):
    """Start one prepared request from its own thread (as another browser would): an asyncio task whose result is
    the response. The test client blocks its caller per request, hence the thread."""
    import asyncio

    transport = client._transport

    def send():
        response = transport.handle_request(request)
        response.read()
        return response

    return asyncio.ensure_future(asyncio.to_thread(send))
