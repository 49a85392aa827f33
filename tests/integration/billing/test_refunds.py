"""Refunds: the cancellation policy at each boundary through the real cancel endpoint, each refund sent to
Stripe once with its own idempotency key; a coordinator's refunds with a reason; disputes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from telehealth.audit.models import AuditEvent
from telehealth.billing.models import Payment, Refund
from tests.helpers import csrf_headers
from tests.integration.billing.helpers import (
    TUESDAY_TEN,
    StripeWatch,
    appointment_status,
    book_and_pay,
    complete_on_stripe,
    coordinator,
    deliver,
    hold_consult,
    prescriber_and_patient,
    rows,
    run_jobs,
    statement,
    switch_to,
)

LONG_REASON = (
    "Video dropped for the first twenty minutes of the visit and the patient had to call back twice; "
    "the clinician agreed to refund a third of the consult fee."
)


async def _cancel(client, appointment_id: str, **body):
    return await client.post(f"/api/v1/appointments/{appointment_id}/cancel", json=body, headers=await csrf_headers(client))


async def test_cancellation_refunds_follow_the_24_hour_rule_at_each_boundary(client, session_factory, settings, clock, stripe_fake):
    prescriber, _patient = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    intents: dict[str, str] = {}  # payment id -> PaymentIntent

    async def book() -> dict:
        held, intent = await book_and_pay(client, stripe_fake, prescriber)
        intents[held["payment_id"]] = intent
        return held

    clock.advance(timedelta(minutes=-1))  # 24 h and 1 min before the start: free
    early = await book()
    assert (await _cancel(client, early["id"])).json()["status"] == "cancelled"

    clock.advance(timedelta(minutes=1))  # exactly 24 h before: still free
    boundary = await book()
    assert (await _cancel(client, boundary["id"])).json()["status"] == "cancelled"

    late = await book()
    clock.advance(timedelta(minutes=1))  # 23 h 59 min before: the late fee is kept, once the patient agrees
    told = await _cancel(client, late["id"])
    assert (told.status_code, told.json()["code"]) == (422, "appointment.late_fee_applies")
    assert "$50.00" in told.json()["detail"] and "$100.00" in told.json()["detail"]
    assert (told.json()["late_fee_cents"], told.json()["refund_cents"]) == (5000, 10000)
    assert (
        await appointment_status(client, late["id"]) == "booked"
        and await rows(session_factory, Refund, Refund.payment_id == late["payment_id"]) == []
    )
    assert (await _cancel(client, late["id"], accept_late_fee=True)).json()["status"] == "cancelled"

    by_clinic = await book()
    clock.advance(timedelta(hours=20))  # well inside 24 h, but the clinician cancels: everything back
    await switch_to(client, prescriber, clock)
    assert (await _cancel(client, by_clinic["id"])).json()["status"] == "cancelled"

    refunds = {str(r.payment_id): r for r in await rows(session_factory, Refund)}
    expected = {
        early["payment_id"]: (15000, "patient_cancelled_early"),
        boundary["payment_id"]: (15000, "patient_cancelled_early"),
        late["payment_id"]: (10000, "late_cancel"),
        by_clinic["payment_id"]: (15000, "clinician_cancelled"),
    }
    assert {pid: (r.amount_cents, r.reason) for pid, r in refunds.items()} == expected

    await run_jobs(session_factory, settings, clock)
    await run_jobs(session_factory, settings, clock)  # a second pass sends nothing more
    sent = watch.created("refund")
    assert sorted((r["payment_intent"], r["amount"]) for r in sent) == sorted((intents[pid], cents) for pid, (cents, _) in expected.items())
    keys = sorted(r.headers["idempotency-key"] for r in watch.requests("/v1/refunds", "POST"))
    assert keys == sorted(f"refund:{r.id}" for r in refunds.values())
    settled = {str(p.id): (p.status, p.refunded_cents) for p in await rows(session_factory, Payment)}
    assert settled[late["payment_id"]] == ("paid", 10000)  # the $50 fee stays with the clinic
    assert {settled[pid] for pid in (early["payment_id"], boundary["payment_id"], by_clinic["payment_id"])} == {("refunded", 15000)}
    assert all(r.status == "succeeded" and r.stripe_refund_id for r in await rows(session_factory, Refund))


async def test_a_coordinator_refunds_with_a_reason_up_to_what_was_paid(client, session_factory, settings, clock, stripe_fake):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    held, intent = await book_and_pay(client, stripe_fake, prescriber)
    url = f"/api/v1/billing/payments/{held['payment_id']}/refunds"
    by_patient = await client.post(url, json={"amount_cents": 100, "reason": "I want it back"}, headers=await csrf_headers(client))
    assert by_patient.status_code == 403

    staff = await coordinator(session_factory, settings, clock)
    await switch_to(client, staff, clock)
    headers = await csrf_headers(client)
    no_reason = await client.post(url, json={"amount_cents": 100, "reason": "   "}, headers=headers)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["fields"]
    first = await client.post(url, json={"amount_cents": 5000, "reason": LONG_REASON}, headers=headers)
    assert first.status_code == 201, first.text
    assert (first.json()["amount_cents"], first.json()["reason"], first.json()["status"]) == (5000, "manual", "pending")
    too_much = await client.post(url, json={"amount_cents": 10001, "reason": "Goodwill"}, headers=headers)
    assert too_much.status_code == 422 and "amount_cents" in too_much.json()["fields"] and "$100.00" in too_much.json()["detail"]
    rest = await client.post(url, json={"amount_cents": 10000, "reason": "Goodwill: the rest"}, headers=headers)
    assert rest.status_code == 201, rest.text
    one_more = await client.post(url, json={"amount_cents": 1, "reason": "One cent more"}, headers=headers)
    assert one_more.status_code == 422 and "amount_cents" in one_more.json()["fields"], one_more.text

    [payment] = await rows(session_factory, Payment)
    assert (payment.status, payment.refunded_cents) == ("refunded", 15000)
    async with session_factory() as session:
        audited = (await session.execute(select(AuditEvent).where(AuditEvent.action == "refund.request.manual"))).scalars().all()
    assert (
        len(audited) == 2 and {a.actor_user_id for a in audited} == {staff.user_id} and {a.actor_role for a in audited} == {"coordinator"}
    )
    notes = sorted(r.note for r in await rows(session_factory, Refund))
    assert notes == ["Goodwill: the rest", LONG_REASON]

    await run_jobs(session_factory, settings, clock)
    assert sorted((r["payment_intent"], r["amount"]) for r in watch.created("refund")) == [(intent, 5000), (intent, 10000)]
    assert all("Goodwill" not in r.raw_body and "Video" not in r.raw_body for r in watch.requests())  # the reason stays with us
    await switch_to(client, patient, clock)
    ledger = sorted((line["kind"], line["amount_cents"]) for line in (await statement(client))["ledger"])
    assert ledger == [("charge", 15000), ("refund", -10000), ("refund", -5000)]


async def test_a_dispute_flags_the_payment_for_the_coordinator_and_shows_on_the_statement(
    client, session_factory, settings, clock, stripe_fake
):
    prescriber, _patient = await prescriber_and_patient(client, session_factory, settings, clock)
    held, intent = await book_and_pay(client, stripe_fake, prescriber, TUESDAY_TEN)
    charge_id = stripe_fake.objects[intent]["latest_charge"]
    dispute = {
        "id": "dp_test_1",
        "object": "dispute",
        "amount": 15000,
        "currency": "usd",
        "charge": charge_id,
        "payment_intent": intent,
        "reason": "fraudulent",
        "status": "needs_response",
    }
    event = stripe_fake.event("charge.dispute.created", dispute)
    await deliver(client, stripe_fake, event, outcome="flagged")
    await deliver(client, stripe_fake, event, outcome="duplicate")
    again = stripe_fake.event("charge.dispute.created", dispute)  # Stripe resends under a new event id: still one line
    await deliver(client, stripe_fake, again, outcome="flagged")

    [payment] = (await statement(client))["payments"]
    assert payment["disputed"] is True
    assert sorted((line["kind"], line["amount_cents"]) for line in (await statement(client))["ledger"]) == [
        ("charge", 15000),
        ("dispute", -15000),
    ]
    assert (await client.get("/api/v1/billing/disputes")).status_code == 403
    await switch_to(client, await coordinator(session_factory, settings, clock), clock)
    disputes = (await client.get("/api/v1/billing/disputes")).json()
    assert [(d["id"], d["disputed"]) for d in disputes] == [(held["payment_id"], True)]
    totals = (await client.get("/api/v1/billing/daily-totals")).json()
    assert [(t["charged_cents"], t["disputed_cents"]) for t in totals] == [(15000, 15000)]


async def test_concurrent_coordinator_refunds_never_exceed_what_was_paid(client, session_factory, settings, clock, stripe_fake):
    import asyncio

    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held, _ = await book_and_pay(client, stripe_fake, prescriber)
    await switch_to(client, await coordinator(session_factory, settings, clock), clock)
    headers = await csrf_headers(client)
    url = f"/api/v1/billing/payments/{held['payment_id']}/refunds"
    answers = await asyncio.gather(
        *(client.post(url, json={"amount_cents": 6000, "reason": f"Goodwill {i}"}, headers=headers) for i in range(3))
    )
    assert sorted(a.status_code for a in answers) == [201, 201, 422]
    [payment] = await rows(session_factory, Payment)
    assert (payment.status, payment.refunded_cents) == ("paid", 12000)
    assert sum(r.amount_cents for r in await rows(session_factory, Refund)) == 12000


async def test_with_no_late_fee_a_late_cancel_needs_no_confirmation_and_refunds_everything(
    client, session_factory, settings, clock, stripe_fake
):
    from telehealth.billing import service
    from telehealth.db.engine import transaction
    from telehealth.lib.actors import Actor

    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    async with transaction(session_factory) as session:
        await service.update_policy(session, values={"late_cancel_fee_cents": 0}, actor=Actor.system(), now=clock.now(), settings=settings)
    held, _ = await book_and_pay(client, stripe_fake, prescriber)
    clock.advance(timedelta(hours=2))  # 22 h before
    await switch_to(client, patient, clock)
    cancelled = await _cancel(client, held["id"])
    assert cancelled.status_code == 200, cancelled.text
    [refund] = await rows(session_factory, Refund)
    assert (refund.amount_cents, refund.reason) == (15000, "late_cancel")


async def test_an_ineligible_patient_gets_the_consult_refunded_once(client, session_factory, settings, clock, stripe_fake):
    import uuid

    from telehealth.billing.settlement import refund_consult_for_ineligibility
    from telehealth.db.engine import transaction
    from telehealth.lib.actors import Actor

    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    held, intent = await book_and_pay(client, stripe_fake, prescriber)
    for expected in (15000, 0):
        async with transaction(session_factory) as session:
            refunded = await refund_consult_for_ineligibility(
                session, appointment_id=uuid.UUID(held["id"]), actor=Actor.system(), now=clock.now()
            )
        assert refunded == expected
    await run_jobs(session_factory, settings, clock)
    assert [(r["payment_intent"], r["amount"]) for r in watch.created("refund")] == [(intent, 15000)]
    assert [(r.reason, r.status) for r in await rows(session_factory, Refund)] == [("ineligible", "succeeded")]


async def test_a_late_fee_charged_for_a_late_move_is_not_kept_again_on_a_late_cancel(client, session_factory, settings, clock, stripe_fake):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    held, _ = await book_and_pay(client, stripe_fake, prescriber)  # Tuesday 15:00 UTC, 24 h ahead
    clock.advance(timedelta(hours=1))  # 23 h before: inside the free window
    await switch_to(client, patient, clock)
    moved = await client.post(
        f"/api/v1/appointments/{held['id']}/reschedule",
        json={"starts_at": "2026-11-24T14:00:00Z", "accept_late_fee": True},
        headers=await csrf_headers(client),
    )
    assert moved.status_code == 200, moved.text
    assert len(await rows(session_factory, Payment, Payment.appointment_id == held["id"], Payment.purpose == "late_cancel_fee")) == 1
    cancelled = await _cancel(client, held["id"])  # 22 h ahead: late, but the fee was already charged
    assert cancelled.status_code == 200, cancelled.text
    assert [(r.reason, r.amount_cents) for r in await rows(session_factory, Refund, Refund.payment_id == held["payment_id"])] == [
        ("late_cancel_fee_already_charged", 15000)
    ]
    assert len(await rows(session_factory, Payment, Payment.appointment_id == held["id"], Payment.purpose == "late_cancel_fee")) == 1


async def test_a_fully_refunded_visit_cancelled_late_costs_no_fee(client, session_factory, settings, clock, stripe_fake):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    held, _ = await book_and_pay(client, stripe_fake, prescriber)
    await switch_to(client, await coordinator(session_factory, settings, clock), clock)
    refunded = await client.post(
        f"/api/v1/billing/payments/{held['payment_id']}/refunds",
        json={"amount_cents": 15000, "reason": "clinic goodwill"},
        headers=await csrf_headers(client),
    )
    assert refunded.status_code == 201, refunded.text
    clock.advance(timedelta(hours=1))  # 23 h before the start
    await switch_to(client, patient, clock)
    told = await _cancel(client, held["id"])
    assert told.status_code == 200 and told.json()["status"] == "cancelled", told.text
    assert await rows(session_factory, Payment, Payment.appointment_id == held["id"], Payment.purpose == "late_cancel_fee") == []


async def test_a_dispute_that_overtakes_the_completion_completes_the_payment_first(client, session_factory, settings, clock, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    completed = await complete_on_stripe(stripe_fake, held["checkout_url"])  # the completion event is late
    intent = completed["data"]["object"]["payment_intent"]
    dispute = {
        "id": "dp_test_2",
        "object": "dispute",
        "amount": 15000,
        "currency": "usd",
        "charge": stripe_fake.objects[intent]["latest_charge"],
        "payment_intent": intent,
        "reason": "fraudulent",
        "status": "needs_response",
    }
    await deliver(client, stripe_fake, stripe_fake.event("charge.dispute.created", dispute), outcome="flagged")
    assert sorted((line["kind"], line["amount_cents"]) for line in (await statement(client))["ledger"]) == [
        ("charge", 15000),
        ("dispute", -15000),
    ]
    await deliver(client, stripe_fake, completed, outcome="already_paid")
    assert await appointment_status(client, held["id"]) == "booked"
    assert len((await statement(client))["ledger"]) == 2
