"""The clinic's policy: read in dollars, changed by coordinators only (audited, checked), used by the next
checkout; and the program fee's refund tiers by shipments sent."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from telehealth.audit.models import AuditEvent
from telehealth.billing import service
from telehealth.billing.models import Payment, Refund
from telehealth.billing.settlement import refund_program
from telehealth.billing.states import PaymentPurpose, PaymentStatus
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from tests.helpers import csrf_headers, pay_checkout
from tests.integration.billing.helpers import (
    StripeWatch,
    coordinator,
    hold_consult,
    plan_row,
    prescriber_and_patient,
    rows,
    run_jobs,
    switch_to,
)

ALL_FIELDS = {
    "consult_fee_cents": 17500,
    "program_fee_cents": 120000,
    "integration_fee_cents": 8000,
    "late_cancel_fee_cents": 4000,
    "no_show_fee_cents": 6000,
    "free_cancel_hours": 48,
    "program_refund_percent_after_first_shipment": 40,
    "program_refund_percent_after_second_shipment": 10,
    "included_integration_sessions": 2,
}


async def test_the_policy_reads_in_dollars_and_a_coordinators_change_prices_the_next_checkout(
    client, session_factory, settings, clock, stripe_fake
):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    policy = (await client.get("/api/v1/billing/policy")).json()
    assert policy["consult_fee_cents"] == 15000 and policy["free_cancel_hours"] == 24
    appointments, program = " ".join(policy["appointments"]), " ".join(policy["program"])
    assert "$150.00" in appointments and "$50.00" in appointments and "24 hours" in appointments
    assert "$1,158.00" in program and "50% back ($579.00)" in program and "0% back ($0.00)" in program
    refused = await client.put("/api/v1/billing/policy", json={"consult_fee_cents": 1}, headers=await csrf_headers(client))
    assert refused.status_code == 403

    staff = await coordinator(session_factory, settings, clock)
    await switch_to(client, staff, clock)
    changed = await client.put(
        "/api/v1/billing/policy", json={"consult_fee_cents": 20000, "late_cancel_fee_cents": 2500}, headers=await csrf_headers(client)
    )
    assert changed.status_code == 200, changed.text
    assert "$200.00" in changed.json()["appointments"][0] and "$25.00" in " ".join(changed.json()["appointments"])
    async with session_factory() as session:
        audited = (await session.execute(select(AuditEvent).where(AuditEvent.action == "billing_policy.update"))).scalars().all()
    assert {a.actor_user_id for a in audited} == {staff.user_id}
    assert sorted(a.reason for a in audited) == ["consult_fee_cents=20000", "late_cancel_fee_cents=2500"]

    await switch_to(client, patient, clock)
    watch = StripeWatch(stripe_fake)
    held = await hold_consult(client, prescriber)
    [session] = watch.created("checkout.session")
    assert held["amount_cents"] == session["amount_total"] == 20000
    paying = await client.post(f"/api/v1/billing/appointments/{held['id']}/checkout", json={}, headers=await csrf_headers(client))
    assert paying.json()["checkout_url"] == held["checkout_url"] and "$200.00" in paying.json()["policy"][0]


async def test_a_coordinator_can_change_every_field_at_once(client, session_factory, settings, clock):
    await switch_to(client, await coordinator(session_factory, settings, clock), clock)
    changed = await client.put("/api/v1/billing/policy", json=ALL_FIELDS, headers=await csrf_headers(client))
    assert changed.status_code == 200, changed.text
    assert {name: changed.json()[name] for name in ALL_FIELDS} == ALL_FIELDS
    assert "48 hours" in " ".join(changed.json()["appointments"]) and "40% back ($480.00)" in " ".join(changed.json()["program"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"consult_fee_cents": 0}, "consult_fee_cents"),
        ({"program_fee_cents": -100}, "program_fee_cents"),
        ({"late_cancel_fee_cents": -1}, "late_cancel_fee_cents"),
        ({"program_refund_percent_after_first_shipment": 101}, "program_refund_percent_after_first_shipment"),
        ({"free_cancel_hours": "a day"}, "free_cancel_hours"),
        ({"consult_fee": 100}, "consult_fee"),
    ],
)
async def test_bad_policy_values_are_refused_naming_the_field(client, session_factory, settings, clock, body, field):
    await switch_to(client, await coordinator(session_factory, settings, clock), clock)
    refused = await client.put("/api/v1/billing/policy", json=body, headers=await csrf_headers(client))
    assert refused.status_code in (400, 422) and field in refused.json()["fields"], refused.text
    assert (await client.get("/api/v1/billing/policy")).json()["consult_fee_cents"] == 15000


async def _paid_program(session_factory, settings, clock, patient_id) -> uuid.UUID:
    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient_id)
    async with transaction(session_factory) as session:
        payment = await service.payment_due(
            session, patient_id=patient_id, purpose=PaymentPurpose.PROGRAM, plan_id=plan_id, now=clock.now(), settings=settings
        )
        assert (payment.status, payment.amount_cents) == ("open", 115800)
        assert await service.mark_paid(session, payment, payment_intent_id=None, now=clock.now(), settings=settings)
    return plan_id


async def _stop_program(session_factory, settings, clock, plan_id, shipments: int) -> int:
    async with transaction(session_factory) as session:
        return await refund_program(
            session, plan_id=plan_id, shipments_sent=shipments, actor=Actor.system(), now=clock.now(), settings=settings
        )


async def test_a_stopped_program_is_refunded_by_shipments_sent(client, session_factory, settings, clock):
    _, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    plans = [await _paid_program(session_factory, settings, clock, patient.patient_id) for _ in range(4)]
    refunded = [await _stop_program(session_factory, settings, clock, plan, shipments) for shipments, plan in enumerate(plans)]
    assert refunded == [115800, 57900, 0, 0]
    assert await _stop_program(session_factory, settings, clock, plans[1], 1) == 0  # a policy refund happens once

    payments = {p.plan_id: p for p in await rows(session_factory, Payment)}
    assert [(payments[plan].status, payments[plan].refunded_cents) for plan in plans] == [
        ("refunded", 115800),
        ("paid", 57900),
        ("paid", 0),
        ("paid", 0),
    ]
    reasons = sorted((r.reason, r.amount_cents) for r in await rows(session_factory, Refund))
    assert reasons == [("program_after_first_shipment", 57900), ("program_before_shipment", 115800)]


async def test_a_program_paid_on_the_billing_page_is_refunded_at_stripe_by_the_policy_in_force(
    client, session_factory, settings, clock, stripe_fake
):
    _, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient.patient_id)
    async with transaction(session_factory) as session:
        due = await service.payment_due(
            session, patient_id=patient.patient_id, purpose=PaymentPurpose.PROGRAM, plan_id=plan_id, now=clock.now(), settings=settings
        )
        await service.update_policy(
            session, values={"program_refund_percent_after_first_shipment": 25}, actor=Actor.system(), now=clock.now(), settings=settings
        )
    checkout = await client.post(f"/api/v1/billing/payments/{due.id}/checkout", json={}, headers=await csrf_headers(client))
    assert checkout.status_code == 200, checkout.text
    assert (checkout.json()["amount_cents"], checkout.json()["policy"][0]) == (115800, "The program fee is $1,158.00.")
    completed = await pay_checkout(client, stripe_fake, checkout.json()["checkout_url"])
    assert await _stop_program(session_factory, settings, clock, plan_id, 1) == 28950
    await run_jobs(session_factory, settings, clock)
    intent = completed["data"]["object"]["payment_intent"]
    assert [(r["payment_intent"], r["amount"]) for r in watch.created("refund")] == [(intent, 28950)]
    [line_items] = [r.params["line_items"] for r in watch.requests("/v1/checkout/sessions", "POST")]
    assert line_items[0]["price_data"]["product_data"]["name"] == "Program services"


async def test_a_program_fee_paid_after_it_was_called_off_is_refunded_in_full(client, session_factory, settings, clock, stripe_fake):
    from telehealth.billing.models import Refund

    _, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient.patient_id)
    async with transaction(session_factory) as session:
        due = await service.payment_due(
            session, patient_id=patient.patient_id, purpose=PaymentPurpose.PROGRAM, plan_id=plan_id, now=clock.now(), settings=settings
        )
        await service.release_payment(session, due, target=PaymentStatus.CANCELLED, now=clock.now())  # the plan was discontinued
    async with transaction(session_factory) as session:
        late = await session.get(Payment, due.id, with_for_update=True)
        assert await service.mark_paid(session, late, payment_intent_id="pi_late", now=clock.now(), settings=settings)
    [refund] = await rows(session_factory, Refund, Refund.payment_id == due.id)
    assert (refund.reason, refund.amount_cents) == ("paid_after_cancel", 115800)
