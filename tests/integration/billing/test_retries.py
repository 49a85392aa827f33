"""Stripe calls that time out or fail are retried with the same idempotency key: one session, one refund."""

from __future__ import annotations

from datetime import timedelta

from litestar.testing import AsyncTestClient

from telehealth.billing.models import Refund
from tests.conftest import with_settings
from tests.helpers import csrf_headers
from tests.integration.billing.helpers import (
    StripeWatch,
    appointment_status,
    book_and_pay,
    hold_consult,
    pay,
    prescriber_and_patient,
    rows,
    run_jobs,
)


async def test_a_checkout_session_whose_answer_times_out_is_made_once(session_factory, settings, clock, stripe_fake):
    from telehealth.asgi import create_app

    impatient = with_settings(settings, stripe_timeout_seconds=0.5)
    async with AsyncTestClient(app=create_app(impatient, clock=clock), base_url="http://testserver.local") as client:
        prescriber, _ = await prescriber_and_patient(client, session_factory, impatient, clock)
        watch = StripeWatch(stripe_fake)
        stripe_fake.slow_next("/v1/checkout/sessions", seconds=3)  # made at once, answered too late for the client
        held = await hold_consult(client, prescriber)
        attempts = watch.requests("/v1/checkout/sessions", "POST")
        assert len(attempts) >= 2 and len({r.headers["idempotency-key"] for r in attempts}) == 1
        [session] = watch.created("checkout.session")
        assert session["url"] == held["checkout_url"] and session["metadata"] == {"payment_id": held["payment_id"]}
        await pay(client, stripe_fake, held)
        assert await appointment_status(client, held["id"]) == "booked"


async def test_a_checkout_session_stripe_never_answers_is_a_503_and_the_hold_stays(session_factory, settings, clock, stripe_fake):
    from telehealth.asgi import create_app

    impatient = with_settings(settings, stripe_timeout_seconds=0.3, stripe_max_network_retries=1)
    async with AsyncTestClient(app=create_app(impatient, clock=clock), base_url="http://testserver.local") as client:
        prescriber, _ = await prescriber_and_patient(client, session_factory, impatient, clock)
        stripe_fake.fail_next("/v1/checkout/sessions", times=2)
        body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"}
        booked = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
        assert booked.status_code == 201 and booked.json()["status"] == "held"  # booking never waits on Stripe
        held = booked.json()
        checkout = f"/api/v1/billing/appointments/{held['id']}/checkout"
        refused = await client.post(checkout, json={}, headers=await csrf_headers(client))
        assert (refused.status_code, refused.json()["code"]) == (503, "payments.unavailable")
        assert await appointment_status(client, held["id"]) == "held"  # the time is still the patient's
        again = await client.post(checkout, json={}, headers=await csrf_headers(client))  # trying again works
        assert again.status_code == 200 and again.json()["payment_id"] and again.json()["amount_cents"] == held["amount_cents"]
        await pay(client, stripe_fake, held | {"checkout_url": again.json()["checkout_url"]})
        assert await appointment_status(client, held["id"]) == "booked"


async def test_a_refund_job_retried_after_a_timeout_or_an_error_refunds_once(client, session_factory, settings, clock, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    worker_settings = with_settings(settings, stripe_timeout_seconds=0.5, stripe_max_network_retries=2)  # 3 tries per job attempt
    watch = StripeWatch(stripe_fake)
    timed_out, timed_out_intent = await book_and_pay(client, stripe_fake, prescriber)
    failed, failed_intent = await book_and_pay(client, stripe_fake, prescriber, "2026-11-25T15:00:00Z")
    await run_jobs(session_factory, worker_settings, clock)  # the confirmations: only refunds are left to send below

    async def cancel_then_run(appointment: dict) -> Refund:
        cancelled = await client.post(f"/api/v1/appointments/{appointment['id']}/cancel", json={}, headers=await csrf_headers(client))
        assert cancelled.status_code == 200, cancelled.text
        await run_jobs(session_factory, worker_settings, clock)
        [refund] = await rows(session_factory, Refund, Refund.payment_id == appointment["payment_id"])
        return refund

    # Stripe makes the refund but every answer comes too late: the job fails and is retried later.
    stripe_fake.slow_next("/v1/refunds", seconds=3, times=3)
    refund = await cancel_then_run(timed_out)
    assert refund.status == "pending"
    assert [(r["payment_intent"], r["amount"]) for r in watch.created("refund")] == [(timed_out_intent, 15000)]

    # Stripe answers 500 to every try: nothing is refunded yet, the job is retried later.
    stripe_fake.fail_next("/v1/refunds", status=500, times=3)
    other = await cancel_then_run(failed)
    assert other.status == "pending"
    assert [r["payment_intent"] for r in watch.created("refund")] == [timed_out_intent]

    clock.advance(timedelta(minutes=5))  # past the worker's back-off
    await run_jobs(session_factory, worker_settings, clock)
    sent = watch.created("refund")
    assert sorted((r["payment_intent"], r["amount"]) for r in sent) == sorted([(timed_out_intent, 15000), (failed_intent, 15000)])
    finished = {r.id: r for r in await rows(session_factory, Refund)}
    assert {r.status for r in finished.values()} == {"succeeded"}
    assert finished[refund.id].stripe_refund_id == next(r["id"] for r in sent if r["payment_intent"] == timed_out_intent)
    keys = {r.headers["idempotency-key"] for r in watch.requests("/v1/refunds", "POST")}
    assert keys == {f"refund:{refund.id}", f"refund:{other.id}"}
    assert len(watch.requests("/v1/refunds", "POST")) == 8  # 3 + 3 tries that failed, then one each that worked
