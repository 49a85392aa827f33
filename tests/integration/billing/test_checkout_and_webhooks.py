"""Paid bookings: held until Stripe's signed webhook says paid; expiry frees the slot; a late payment is
refunded; events are acted on once, in any order; bad signatures store nothing; a double-click pays once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from telehealth.audit.models import AuditEvent
from telehealth.billing.models import Payment, Refund, StripeEvent
from telehealth.db.engine import transaction
from telehealth.devtools.stripe_stand_in import sign_payload
from telehealth.scheduling.models import Appointment
from telehealth.scheduling.service import expire_lapsed_holds
from tests.helpers import csrf_headers, deliver_stripe_event, sign_in
from tests.integration.billing.helpers import (
    TUESDAY_TEN,
    TUESDAY_TEN_AT,
    StripeWatch,
    appointment_status,
    checkout_for,
    complete_on_stripe,
    dashboard,
    deliver,
    hold_consult,
    insert_appointment,
    pay,
    prescriber_and_patient,
    rows,
    run_jobs,
    session_id_of,
    statement,
)
from tests.integration.scheduling.helpers import screened_patient

SLOTS = {"type": "consult", "from": "2026-11-24T14:00:00Z", "to": "2026-11-24T16:00:00Z"}


async def _offered(client) -> set[str]:
    response = await client.get("/api/v1/slots", params=SLOTS)
    assert response.status_code == 200, response.text
    return {slot["starts_at"] for slot in response.json()}


async def _audits(session_factory, action: str, resource_id) -> int:
    async with session_factory() as session:
        return await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action, AuditEvent.resource_id == str(resource_id))
        )


def _invites(smtp) -> list:
    return [m for m in smtp.messages if any(part.get_filename() == "appointment.ics" for part in m.iter_attachments())]


async def test_a_paid_booking_is_booked_only_by_stripes_signed_webhook(client, session_factory, settings, clock, smtp, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    assert held["amount_cents"] == 15000 and held["checkout_url"].startswith(stripe_fake.base_url)
    assert held["hold_expires_at"] == (clock.now() + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")

    event = await complete_on_stripe(stripe_fake, held["checkout_url"])
    # The patient lands on the success URL before (or without) the webhook: that alone books nothing.
    success_url = event["data"]["object"]["success_url"]
    landed = await client.get(success_url.replace(settings.public_base_url, ""))
    assert landed.status_code < 500
    assert await appointment_status(client, held["id"]) == "held"
    assert (await statement(client))["ledger"] == []
    await run_jobs(session_factory, settings, clock)
    assert _invites(smtp) == []

    await deliver(client, stripe_fake, event, outcome="paid")
    assert await appointment_status(client, held["id"]) == "booked"
    await run_jobs(session_factory, settings, clock)
    confirmations = _invites(smtp)
    assert len(confirmations) == 1 and confirmations[0]["To"] == "pat@example.org"
    ledger = (await statement(client))["ledger"]
    assert [(line["kind"], line["amount_cents"], line["payment_id"]) for line in ledger] == [("charge", 15000, held["payment_id"])]


async def test_an_expired_checkout_frees_the_slot(client, session_factory, settings, clock, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    assert TUESDAY_TEN in await _offered(client)
    held = await hold_consult(client, prescriber)
    assert TUESDAY_TEN not in await _offered(client)

    session = {**stripe_fake.objects[session_id_of(held["checkout_url"])], "status": "expired"}
    await deliver(client, stripe_fake, stripe_fake.event("checkout.session.expired", session), outcome="expired")
    payment = (await statement(client))["payments"][0]
    assert (payment["id"], payment["status"]) == (held["payment_id"], "expired")
    assert await appointment_status(client, held["id"]) == "expired"
    assert TUESDAY_TEN in await _offered(client)
    assert await _audits(session_factory, "payment.lapse", held["payment_id"]) == 1
    assert await _audits(session_factory, "appointment.lapse", held["id"]) == 1


async def test_a_hold_never_taken_to_pay_lapses_and_leaves_nothing_due(client, session_factory, settings, clock, stripe_fake):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": TUESDAY_TEN}
    booked = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    held = booked.json()
    assert (booked.status_code, held["status"], held["amount_cents"], held["payment_id"]) == (201, "held", 15000, None)
    assert watch.requests() == []  # booking never called Stripe
    clock.advance(timedelta(minutes=31))
    async with transaction(session_factory) as session:  # the worker's sweep; no Checkout Session exists to expire it
        assert await expire_lapsed_holds(session, now=clock.now()) == 1
    [appointment] = await rows(session_factory, Appointment, Appointment.id == uuid.UUID(held["id"]))
    assert appointment.status == "expired"
    client.cookies.clear()
    await sign_in(client, patient, clock)
    assert TUESDAY_TEN in await _offered(client)
    assert await rows(session_factory, Payment) == [] and (await statement(client))["balance_due_cents"] == 0


async def test_asking_to_pay_again_holds_a_time_an_hour_at_most(client, session_factory, settings, clock, stripe_fake):
    """Asking for the Checkout again finds the live session and extends nothing; once it runs out, one new
    session may take the hold to an hour from the booking, never past it: a patient cannot keep a time from
    everyone else by asking again and again."""
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    booked_at = clock.now()
    held = await hold_consult(client, prescriber)
    appointment_id = uuid.UUID(held["id"])

    async def hold_ends() -> object:
        [appointment] = await rows(session_factory, Appointment, Appointment.id == appointment_id)
        return appointment.hold_expires_at

    assert await hold_ends() == booked_at + timedelta(minutes=30)
    clock.advance(timedelta(minutes=20))
    assert (await checkout_for(client, held))["checkout_url"] == held["checkout_url"]
    assert await hold_ends() == booked_at + timedelta(minutes=30)  # not 20 + 30
    clock.advance(timedelta(minutes=9, seconds=30))  # the session has half a minute left: a new one
    renewed = await checkout_for(client, held)
    assert renewed["checkout_url"] != held["checkout_url"]
    assert await hold_ends() == booked_at + timedelta(minutes=59, seconds=30)
    clock.advance(timedelta(minutes=29, seconds=30))  # that one runs out too: no third
    refused = await client.post(f"/api/v1/billing/appointments/{appointment_id}/checkout", json={}, headers=await csrf_headers(client))
    assert (refused.status_code, refused.json()["code"]) == (409, "payment.hold_lapsed")
    assert await hold_ends() == booked_at + timedelta(minutes=59, seconds=30)


async def test_a_payment_that_arrives_after_the_slot_was_released_is_refunded_in_full(
    client, session_factory, settings, clock, smtp, stripe_fake
):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    held = await hold_consult(client, prescriber)
    clock.advance(timedelta(minutes=31))  # the hold lapsed; another patient takes the time
    other = await screened_patient(session_factory, settings, clock, email="other@example.org")
    client.cookies.clear()
    await sign_in(client, other, clock)
    taken = await hold_consult(client, prescriber)

    client.cookies.clear()
    await sign_in(client, patient, clock)
    intent = await pay(client, stripe_fake, held)  # Stripe still took the money for the first session
    assert await appointment_status(client, held["id"]) == "expired"
    [refund] = await rows(session_factory, Refund)
    assert (refund.reason, refund.amount_cents, refund.status) == ("hold_lapsed", 15000, "pending")

    await run_jobs(session_factory, settings, clock)
    refunds = watch.created("refund")
    assert [(r["payment_intent"], r["amount"]) for r in refunds] == [(intent, 15000)]
    assert [r.headers["idempotency-key"] for r in watch.requests("/v1/refunds")] == [f"refund:{refund.id}"]
    [payment] = await rows(session_factory, Payment, Payment.id == held["payment_id"])
    assert (payment.status, payment.refunded_cents) == ("refunded", 15000)
    subjects = [m["Subject"] for m in smtp.messages if m["To"] == "pat@example.org"]
    assert "Your payment came after your time was released" in subjects and any(s.startswith("A refund") for s in subjects)
    assert _invites(smtp) == []  # nothing was booked for the late payer
    client.cookies.clear()
    await sign_in(client, other, clock)
    assert await appointment_status(client, taken["id"]) == "held"  # the other patient keeps the time


async def test_a_repeated_event_is_acted_on_once(client, session_factory, settings, clock, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    event = await complete_on_stripe(stripe_fake, held["checkout_url"])
    await deliver(client, stripe_fake, event, outcome="paid")
    await deliver(client, stripe_fake, event, outcome="duplicate")

    twin = await hold_consult(client, prescriber, "2026-11-25T15:00:00Z")
    twin_event = await complete_on_stripe(stripe_fake, twin["checkout_url"])
    answers = await asyncio.gather(*(deliver_stripe_event(client, stripe_fake, twin_event) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert sorted(a.json()["outcome"] for a in answers) == ["duplicate"] * 4 + ["paid"]

    charges = [(line["payment_id"], line["amount_cents"]) for line in (await statement(client))["ledger"] if line["kind"] == "charge"]
    assert sorted(charges) == sorted([(held["payment_id"], 15000), (twin["payment_id"], 15000)])
    for booked in (held, twin):
        assert await _audits(session_factory, "payment.complete", booked["payment_id"]) == 1
        assert await _audits(session_factory, "appointment.confirm", booked["id"]) == 1
        assert await appointment_status(client, booked["id"]) == "booked"
    assert len(await rows(session_factory, StripeEvent, StripeEvent.id.in_([event["id"], twin_event["id"]]))) == 2


async def test_a_dashboard_refund_that_overtakes_the_completion_is_recorded_once(client, session_factory, settings, clock, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    completed = await complete_on_stripe(stripe_fake, held["checkout_url"])
    intent = completed["data"]["object"]["payment_intent"]
    async with dashboard(stripe_fake) as stripe_client:
        await stripe_client.v1.refunds.create_async({"payment_intent": intent, "amount": 4000})
    refunded = next(
        e for e in reversed(stripe_fake.events) if e["type"] == "charge.refunded" and e["data"]["object"]["payment_intent"] == intent
    )

    await deliver(client, stripe_fake, refunded, outcome="recorded_outside_refund")  # before the completion
    await deliver(client, stripe_fake, completed, outcome="already_paid")
    await deliver(client, stripe_fake, refunded, outcome="duplicate")

    [payment] = (await statement(client))["payments"]
    assert (payment["status"], payment["amount_cents"], payment["refunded_cents"]) == ("paid", 15000, 4000)
    [refund] = await rows(session_factory, Refund)
    assert (refund.reason, refund.amount_cents, refund.status) == ("outside", 4000, "succeeded")
    ledger = sorted((line["kind"], line["amount_cents"]) for line in (await statement(client))["ledger"])
    assert ledger == [("charge", 15000), ("refund", -4000)]
    assert await appointment_status(client, held["id"]) == "booked"
    assert await _audits(session_factory, "payment.complete", held["payment_id"]) == 1


async def test_a_bad_or_stale_signature_answers_400_and_stores_nothing(client, session_factory, settings, clock, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    event = await complete_on_stripe(stripe_fake, held["checkout_url"])
    payload = json.dumps(event)
    now = int(time.time())
    url, content = "/api/v1/billing/stripe/webhook", {"content-type": "application/json"}

    wrong_secret = await client.post(
        url, content=payload, headers=content | {"stripe-signature": sign_payload(payload, "whsec_not_ours", now)}
    )
    tampered_payload = payload.replace('"amount_total": 15000', '"amount_total": 1')
    assert tampered_payload != payload
    tampered = await client.post(
        url, content=tampered_payload, headers=content | {"stripe-signature": sign_payload(payload, stripe_fake.webhook_secret, now)}
    )
    missing = await client.post(url, content=payload, headers=content)
    replayed = await deliver_stripe_event(client, stripe_fake, event, timestamp=now - 600)
    for answer, code in (
        (wrong_secret, "webhook.signature_invalid"),
        (tampered, "webhook.signature_invalid"),
        (missing, "webhook.signature_missing"),
        (replayed, "webhook.signature_invalid"),
    ):
        assert (answer.status_code, answer.json()["code"]) == (400, code), answer.text

    assert await rows(session_factory, StripeEvent) == []
    assert await appointment_status(client, held["id"]) == "held"
    assert (await statement(client))["payments"][0]["status"] == "open"
    await deliver(client, stripe_fake, event, outcome="paid")  # the genuine delivery still works afterwards
    assert await appointment_status(client, held["id"]) == "booked"


async def test_a_double_click_on_pay_makes_one_checkout_session(client, session_factory, settings, clock, stripe_fake):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    appointment_id = await insert_appointment(
        session_factory,
        patient=patient,
        clinician=prescriber,
        starts_at=TUESDAY_TEN_AT,
        appointment_type="consult",
        status="held",
        minutes=45,
        hold_expires_at=clock.now() + timedelta(minutes=15),
    )
    headers = await csrf_headers(client)
    clicks = await asyncio.gather(
        *(client.post(f"/api/v1/billing/appointments/{appointment_id}/checkout", json={}, headers=headers) for _ in range(5))
    )
    assert [c.status_code for c in clicks] == [200] * 5, [c.text for c in clicks]
    assert len({c.json()["checkout_url"] for c in clicks}) == 1 and len({c.json()["payment_id"] for c in clicks}) == 1
    sessions = watch.created("checkout.session")
    assert len(sessions) == 1 and sessions[0]["url"] == clicks[0].json()["checkout_url"]
    assert sessions[0]["metadata"] == {"payment_id": clicks[0].json()["payment_id"]}
    assert len(watch.created("customer")) == 1
    assert len(await rows(session_factory, Payment)) == 1
    # The hold now lasts as long as the session (Checkout's 30-minute minimum).
    assert sessions[0]["expires_at"] == int((clock.now() + timedelta(minutes=30)).timestamp())

    await pay(client, stripe_fake, clicks[0].json())
    assert await appointment_status(client, str(appointment_id)) == "booked"
    again = await client.post(f"/api/v1/billing/appointments/{appointment_id}/checkout", json={}, headers=headers)
    assert again.status_code == 409
    assert len(watch.created("checkout.session")) == 1


async def test_a_payment_completed_on_stripe_after_the_patient_let_the_hold_go_is_refunded(
    client, session_factory, settings, clock, stripe_fake
):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    held = await hold_consult(client, prescriber)
    completed = await complete_on_stripe(stripe_fake, held["checkout_url"])  # paid in one tab...
    let_go = await client.post(
        f"/api/v1/appointments/{held['id']}/cancel", json={}, headers=await csrf_headers(client)
    )  # ...let go in another
    assert let_go.json()["status"] == "cancelled"
    await run_jobs(session_factory, settings, clock)  # Stripe refuses to expire a completed session
    await deliver(client, stripe_fake, completed)
    assert [(r.reason, r.amount_cents) for r in await rows(session_factory, Refund)] == [("hold_lapsed", 15000)]
    await run_jobs(session_factory, settings, clock)
    assert [(r["payment_intent"], r["amount"]) for r in watch.created("refund")] == [(completed["data"]["object"]["payment_intent"], 15000)]
    assert await appointment_status(client, held["id"]) == "cancelled"
    body = await statement(client)
    assert [(p["status"], p["refunded_cents"]) for p in body["payments"]] == [("refunded", 15000)]
    assert sorted((line["kind"], line["amount_cents"]) for line in body["ledger"]) == [("charge", 15000), ("refund", -15000)]


async def test_a_delayed_payment_books_only_when_it_succeeds_and_a_failed_one_frees_the_slot(
    client, session_factory, settings, clock, stripe_fake
):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    paid_later = (await complete_on_stripe(stripe_fake, held["checkout_url"]))["data"]["object"]
    await deliver(
        client,
        stripe_fake,
        stripe_fake.event("checkout.session.completed", {**paid_later, "payment_status": "unpaid"}),
        outcome="awaiting_payment",
    )
    assert await appointment_status(client, held["id"]) == "held" and (await statement(client))["ledger"] == []
    await deliver(client, stripe_fake, stripe_fake.event("checkout.session.async_payment_succeeded", paid_later), outcome="paid")
    assert await appointment_status(client, held["id"]) == "booked"

    failing = await hold_consult(client, prescriber, "2026-11-25T15:00:00Z")
    session = {**stripe_fake.objects[session_id_of(failing["checkout_url"])], "status": "complete", "payment_status": "unpaid"}
    await deliver(client, stripe_fake, stripe_fake.event("checkout.session.completed", session), outcome="awaiting_payment")
    await deliver(client, stripe_fake, stripe_fake.event("checkout.session.async_payment_failed", session), outcome="failed")
    assert await appointment_status(client, failing["id"]) == "expired"
    assert {p["id"]: p["status"] for p in (await statement(client))["payments"]}[failing["payment_id"]] == "failed"
    offered = {s["starts_at"] for s in (await client.get("/api/v1/slots", params={**SLOTS, "to": "2026-11-26T00:00:00Z"})).json()}
    assert "2026-11-25T15:00:00Z" in offered
    assert len([line for line in (await statement(client))["ledger"] if line["kind"] == "charge"]) == 1
