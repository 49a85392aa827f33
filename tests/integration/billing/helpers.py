"""Steps the billing tests share: a bookable prescriber and patient, holding a paid slot, running the
billing jobs against the fake Stripe, reading rows back, and seeing only what this test sent to Stripe."""

from __future__ import annotations

import asyncio
import secrets
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import stripe
from sqlalchemy import select

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.devtools.stripe_stand_in import FakeStripe, RecordedRequest
from telehealth.scheduling.models import Appointment
from tests.helpers import csrf_headers, deliver_stripe_event, drain_jobs, make_person, sign_in, worker_context
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

TUESDAY_TEN = "2026-11-24T15:00:00Z"  # 10:00 New York; the frozen clock is Monday 15:00 UTC, exactly 24 h before
TUESDAY_TEN_AT = datetime.fromisoformat(TUESDAY_TEN)


async def prescriber_and_patient(client, session_factory, settings, clock, *, patient_email="pat@example.org"):
    """A prescriber with hours every day 9-17 New York, and an eligible NY patient, signed in."""
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock, email=patient_email)
    await sign_in(client, patient, clock)
    return prescriber, patient


async def switch_to(client, person, clock) -> None:
    client.cookies.clear()
    await sign_in(client, person, clock)


async def coordinator(session_factory, settings, clock, *, email="co@example.org"):
    return await make_person(session_factory, role=Role.COORDINATOR, email=email, now=clock.now(), settings=settings)


async def hold_consult(client, prescriber, starts_at: str = TUESDAY_TEN, *, save_payment_method: bool = False, **extra) -> dict:
    """POST a consult booking (it answers held, with its fee and no payment yet), then ask for the Checkout
    Session: the booking with the payment's id and the session's URL."""
    body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": starts_at, **extra}
    response = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert response.status_code == 201, response.text
    held = response.json()
    assert held["status"] == "held" and held["amount_cents"] and held["checkout_url"] is None, held
    checkout = await checkout_for(client, held, save_payment_method=save_payment_method)
    assert checkout["amount_cents"] == held["amount_cents"], (checkout, held)
    return held | {"payment_id": checkout["payment_id"], "checkout_url": checkout["checkout_url"]}


async def checkout_for(client, held: dict, *, save_payment_method: bool = False) -> dict:
    """POST /api/v1/billing/appointments/{id}/checkout for a held appointment: its payment and Checkout URL."""
    url = f"/api/v1/billing/appointments/{held['id']}/checkout"
    response = await client.post(url, json={"save_payment_method": save_payment_method}, headers=await csrf_headers(client))
    assert response.status_code == 200, response.text
    return response.json()


def session_id_of(checkout_url: str) -> str:
    return checkout_url.rstrip("/").rsplit("/", 1)[-1]


async def complete_on_stripe(fake: FakeStripe, checkout_url: str) -> dict:
    """The patient pays on Stripe's page; answers the (undelivered) checkout.session.completed event."""
    session_id = session_id_of(checkout_url)
    await asyncio.to_thread(fake.complete_checkout, session_id)
    return next(e for e in reversed(fake.events) if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session_id)


async def deliver(client, fake: FakeStripe, event: dict, *, outcome: str | None = None) -> dict:
    response = await deliver_stripe_event(client, fake, event)
    assert response.status_code == 200, response.text
    if outcome is not None:
        assert response.json()["outcome"] == outcome, response.json()
    return response.json()


async def pay(client, fake: FakeStripe, held: dict) -> dict:
    """Pay a held appointment on Stripe and deliver the signed completion: answers the payment intent id."""
    event = await complete_on_stripe(fake, held["checkout_url"])
    await deliver(client, fake, event, outcome="paid")
    return event["data"]["object"]["payment_intent"]


async def book_and_pay(client, fake: FakeStripe, prescriber, starts_at: str = TUESDAY_TEN, **extra) -> tuple[dict, str]:
    held = await hold_consult(client, prescriber, starts_at, **extra)
    intent = await pay(client, fake, held)
    return held, intent


async def appointment_status(client, appointment_id: str) -> str:
    mine = (await client.get("/api/v1/appointments")).json()
    return next(a["status"] for a in mine if a["id"] == appointment_id)


async def statement(client) -> dict:
    response = await client.get("/api/v1/billing/statement")
    assert response.status_code == 200, response.text
    return response.json()


async def run_jobs(session_factory, settings, clock) -> int:
    """Run every due job (billing jobs build their own StripeGateway from `settings`), then close it."""
    context = worker_context(session_factory, settings, clock)
    try:
        return await drain_jobs(context)
    finally:
        if (gateway := context.services.get("stripe")) is not None:
            await gateway.close()


async def rows(session_factory, model, *where) -> list:
    async with session_factory() as session:
        return list((await session.execute(select(model).where(*where))).scalars())


async def insert_appointment(
    session_factory,
    *,
    patient,
    clinician,
    starts_at: datetime,
    appointment_type="integration",
    status="booked",
    minutes=50,
    hold_expires_at: datetime | None = None,
) -> uuid.UUID:
    """An appointment written straight to the table (an included session, or a hold with nothing paid yet)."""
    appointment_id = uuid.uuid4()
    async with transaction(session_factory) as session:
        session.add(
            Appointment(
                id=appointment_id,
                appointment_type=appointment_type,
                clinician_id=clinician.user_id,
                patient_id=patient.patient_id,
                status=status,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=minutes),
                busy_from=starts_at,
                busy_until=starts_at + timedelta(minutes=minutes),
                hold_expires_at=hold_expires_at,
                room_token=secrets.token_urlsafe(24),
                # A hold is made with its row (scheduling.service.take_slot), and paying can stretch it only so far from then.
                created_at=hold_expires_at - timedelta(minutes=15)
                if status == "held" and hold_expires_at
                else starts_at - timedelta(days=3),
            )
        )
        if status in ("booked", "completed", "no_show"):  # as booking it would have (care_teams.join)
            from telehealth.care_teams import service as care_teams

            await session.flush()
            because = "integration_booked" if appointment_type == "integration" else "consult_booked"
            await care_teams.join(
                session, patient_id=patient.patient_id, clinician_id=clinician.user_id, because=because, now=starts_at - timedelta(days=3)
            )
    return appointment_id


class StripeWatch:
    """What the fake Stripe received and created since this test started (the fake serves the whole run)."""

    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake
        self.first_request = len(fake.requests)
        self.known = set(fake.objects)

    def requests(self, path_prefix: str = "/v1/", method: str | None = None) -> list[RecordedRequest]:
        return [
            r for r in self.fake.requests[self.first_request :] if r.path.startswith(path_prefix) and (method is None or r.method == method)
        ]

    def created(self, object_type: str) -> list[dict]:
        return [obj for obj in self.fake.created(object_type) if obj["id"] not in self.known]


@asynccontextmanager
async def dashboard(fake: FakeStripe) -> AsyncIterator[stripe.StripeClient]:
    """The real stripe client, acting as someone in Stripe's dashboard would (outside our app)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        http = stripe.HTTPXClient()
    try:
        yield stripe.StripeClient("sk_test_dashboard", http_client=http, base_addresses={"api": fake.base_url})  # type: ignore[arg-type]
    finally:
        await http.close_async()


async def plan_row(session_factory, settings, clock, *, patient_id) -> uuid.UUID:
    """A troche plan for a program fee to belong to (a prescriber, a consult, its encounter, the pharmacy)."""
    from telehealth.accounts.roles import Role
    from telehealth.prescribing.models import Encounter, Pharmacy, TrochePlan
    from tests.helpers import make_person

    prescriber = await make_person(
        session_factory, role=Role.PRESCRIBER, email=f"rx-{uuid.uuid4().hex[:6]}@example.org", now=clock.now(), settings=settings
    )
    patient = type("P", (), {"patient_id": patient_id})
    appointment_id = await insert_appointment(
        session_factory,
        patient=patient,
        clinician=prescriber,
        starts_at=clock.now() - timedelta(days=2),
        appointment_type="consult",
        status="completed",
        minutes=45,
    )
    plan_id = uuid.uuid4()
    async with transaction(session_factory) as session:
        pharmacy = Pharmacy(name=f"Pharmacy {plan_id.hex[:6]}", phone="+18025550111", address="1 Mill St", created_at=clock.now())
        encounter = Encounter(appointment_id=appointment_id, patient_id=patient_id, prescriber_id=prescriber.user_id, opened_at=clock.now())
        session.add_all([pharmacy, encounter])
        await session.flush()
        session.add(
            TrochePlan(
                id=plan_id,
                patient_id=patient_id,
                encounter_id=encounter.id,
                prescriber_id=prescriber.user_id,
                pharmacy_id=pharmacy.id,
                status="draft",
                product="Ketamine HCl sublingual troche",
                strength_mg=100,
                sessions=1,
                doses_mg=[100],
                min_hours_between=48,
                directions="As directed",
                shipment_sessions=[1],
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    return plan_id
