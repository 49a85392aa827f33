"""Stopping: a discontinued plan cancels every batch not yet shipped (held, queued, accepted, filled), nothing
more can be released or shipped, and the program fee is refunded by how many shipments have left; a consult
that ends in a decline refunds the consult fee in full."""

from __future__ import annotations

import uuid

from telehealth.billing.models import Payment, Refund
from tests.helpers import csrf_headers
from tests.integration.billing.helpers import StripeWatch, rows, run_jobs
from tests.integration.prescribing.helpers import (
    FILL,
    SHIP,
    audit_actions,
    consult_with_encounter,
    decide,
    draft,
    pay_program_fee,
    pharmacist,
    pharmacy_step,
    refusal,
    release,
    signed_plan,
    switch_to,
)


async def discontinue(client, plan_id: str, reason: str = "Patient moved abroad"):
    return await client.post(f"/api/v1/plans/{plan_id}/discontinue", json={"reason": reason}, headers=await csrf_headers(client))


async def program_payment(session_factory, plan_id: str) -> Payment:
    [payment] = await rows(session_factory, Payment, Payment.plan_id == uuid.UUID(plan_id))
    return payment


async def test_discontinuing_before_any_shipment_cancels_the_filled_and_held_batches_and_refunds_in_full(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    first, second = (b["id"] for b in plan["batches"])
    watch = StripeWatch(stripe_fake)
    await pay_program_fee(client, consult, stripe_fake, clock)
    staff = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id)
    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, first, "accept")).status_code == 200
    assert (await pharmacy_step(client, first, "fill", {**FILL, "units": 9})).status_code == 200

    await switch_to(client, consult.prescriber, clock)
    assert refusal(await discontinue(client, plan["id"], "   "))[:2] == (422, "request.invalid")
    stopped = await discontinue(client, plan["id"])
    assert stopped.status_code == 200, stopped.text
    assert (stopped.json()["status"], [b["status"] for b in stopped.json()["batches"]]) == ("discontinued", ["cancelled", "cancelled"])
    payment = await program_payment(session_factory, plan["id"])
    assert [(r.amount_cents, r.reason) for r in await rows(session_factory, Refund, Refund.payment_id == payment.id)] == [
        (payment.amount_cents, "program_before_shipment")
    ]
    assert refusal(await release(client, second, "Please send it anyway"))[:2] == (422, "batch.plan_not_live")

    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, first, "ship", SHIP)).status_code in (409, 422)
    assert (await client.get("/api/v1/pharmacy/queue")).json()["batches"] == []
    await run_jobs(session_factory, settings, clock)
    assert [r["amount"] for r in watch.created("refund")] == [payment.amount_cents]
    assert await audit_actions(session_factory, first, prefix="plan_batch.") == [
        "plan_batch.accept",
        "plan_batch.fill",
        "plan_batch.cancel",
    ]
    assert await audit_actions(session_factory, second) == ["plan_batch.cancel"]
    assert (await audit_actions(session_factory, plan["id"]))[-1] == "troche_plan.discontinue"


async def test_discontinuing_after_the_first_shipment_refunds_half_and_cancels_the_accepted_batch(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake, shipment_sessions=[2, 2, 2])
    assert [(b["sessions"], b["units"], b["status"]) for b in plan["batches"]] == [
        ("1-2", 5, "queued"),
        ("3-4", 8, "held"),
        ("5-6", 8, "held"),
    ]
    first, second, third = (b["id"] for b in plan["batches"])
    await pay_program_fee(client, consult, stripe_fake, clock)
    staff = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id)
    await switch_to(client, staff, clock)
    for step, body in (("accept", None), ("fill", {**FILL, "units": 5}), ("ship", SHIP), ("deliver", None)):
        assert (await pharmacy_step(client, first, step, body)).status_code == 200, step
    await switch_to(client, consult.prescriber, clock)
    assert (await release(client, second, "Reported by phone")).status_code == 200
    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, second, "accept")).status_code == 200

    await switch_to(client, consult.prescriber, clock)
    stopped = (await discontinue(client, plan["id"], "Blood pressure too high at check-ins")).json()
    assert [b["status"] for b in stopped["batches"]] == ["delivered", "cancelled", "cancelled"]
    payment = await program_payment(session_factory, plan["id"])
    assert [(r.amount_cents, r.reason) for r in await rows(session_factory, Refund, Refund.payment_id == payment.id)] == [
        (payment.amount_cents // 2, "program_after_first_shipment")
    ]
    assert refusal(await release(client, third, "Please"))[:2] == (422, "batch.plan_not_live")
    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, second, "fill", {**FILL, "units": 8})).status_code == 409
    assert (await pharmacy_step(client, second, "ship", SHIP)).status_code in (409, 422)
    assert await audit_actions(session_factory, second) == [
        "plan_batch.release",
        "plan_batch.release_override",
        "plan_batch.accept",
        "plan_batch.cancel",
    ]


async def test_discontinuing_before_the_fee_is_paid_cancels_the_queued_batch_and_the_fee(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    stopped = (await discontinue(client, plan["id"])).json()
    assert [b["status"] for b in stopped["batches"]] == ["cancelled", "cancelled"]  # queued and held
    payment = await program_payment(session_factory, plan["id"])
    assert payment.status == "cancelled"  # nothing is due for a plan that will never ship
    assert await rows(session_factory, Refund) == []
    await switch_to(client, consult.patient, clock)
    statement = (await client.get("/api/v1/billing/statement")).json()
    due = [p for p in statement["payments"] if p["purpose"] == "program" and p["status"] == "open"]
    assert due == []


async def test_a_declined_consult_is_refunded_in_full(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    watch = StripeWatch(stripe_fake)
    assert refusal(await decide(client, consult, "decline")) == (422, "request.invalid", ["reason"])
    declined = await decide(client, consult, "decline", "History of psychosis disclosed in the consult")
    assert (declined.status_code, declined.json()["decision"]) == (200, "decline"), declined.text
    [payment] = await rows(session_factory, Payment, Payment.appointment_id == uuid.UUID(consult.appointment_id))
    [refund] = await rows(session_factory, Refund)
    assert (refund.payment_id, refund.amount_cents, refund.reason) == (payment.id, payment.amount_cents, "ineligible")
    assert refusal(await draft(client, consult))[:2] == (422, "plan.no_start_decision")
    assert (await decide(client, consult, "start_plan")).status_code == 409  # decided once

    await run_jobs(session_factory, settings, clock)
    assert [(r["payment_intent"], r["amount"]) for r in watch.created("refund")] == [
        (payment.stripe_payment_intent_id, payment.amount_cents)
    ]
    assert [(r.reason, r.status) for r in await rows(session_factory, Refund)] == [("ineligible", "succeeded")]
    assert "encounter.decline" in await audit_actions(session_factory, consult.encounter_id)
