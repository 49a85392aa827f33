"""Late-cancellation and no-show fees for sessions nothing was paid for: charged off-session to a card only
when the patient agreed at checkout to keep it for fees, otherwise (or when declined) left due and emailed."""

from __future__ import annotations

from datetime import datetime, timedelta

from telehealth.billing.models import Payment, StripeCustomer
from tests.helpers import csrf_headers
from tests.integration.billing.helpers import (
    StripeWatch,
    book_and_pay,
    insert_appointment,
    prescriber_and_patient,
    rows,
    run_jobs,
    statement,
    switch_to,
)

DUE_SUBJECT = "A payment is due"


def _subjects(smtp, to: str) -> list[str]:
    return [m["Subject"] for m in smtp.messages if m["To"] == to]


async def _cancel_late(client, appointment_id) -> None:
    url = f"/api/v1/appointments/{appointment_id}/cancel"
    told = await client.post(url, json={}, headers=await csrf_headers(client))
    assert (told.status_code, told.json()["code"], told.json()["late_fee_cents"]) == (422, "appointment.late_fee_applies", 5000), told.text
    assert "$50.00" in told.json()["detail"]
    accepted = await client.post(url, json={"accept_late_fee": True}, headers=await csrf_headers(client))
    assert accepted.json()["status"] == "cancelled", accepted.text


async def test_a_late_cancel_without_a_card_kept_for_fees_is_left_due(client, session_factory, settings, clock, smtp, stripe_fake):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    await book_and_pay(client, stripe_fake, prescriber, "2026-11-26T15:00:00Z")  # paid, but did not agree to keep the card
    await run_jobs(session_factory, settings, clock)
    [customer] = await rows(session_factory, StripeCustomer)
    assert customer.payment_method_id is None
    watch = StripeWatch(stripe_fake)
    included = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=datetime.fromisoformat("2026-11-24T14:30:00Z")
    )

    await _cancel_late(client, included)  # 23.5 h before
    await run_jobs(session_factory, settings, clock)
    assert watch.requests("/v1/payment_intents", "POST") == []
    [fee] = await rows(session_factory, Payment, Payment.purpose == "late_cancel_fee")
    assert (fee.status, fee.amount_cents, str(fee.appointment_id)) == ("open", 5000, str(included))
    assert (await statement(client))["balance_due_cents"] == 5000
    assert sum(s.startswith(DUE_SUBJECT) for s in _subjects(smtp, patient.email)) == 1


async def test_fees_are_charged_to_the_card_the_patient_agreed_to_keep_and_a_decline_leaves_them_due(
    client, session_factory, settings, clock, smtp, stripe_fake
):
    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    watch = StripeWatch(stripe_fake)
    await book_and_pay(client, stripe_fake, prescriber, "2026-11-26T15:00:00Z", save_payment_method=True)
    [consult_session] = watch.created("checkout.session")
    await run_jobs(session_factory, settings, clock)  # billing.save_payment_method remembers the card
    [customer] = await rows(session_factory, StripeCustomer)
    assert customer.payment_method_id and customer.payment_method_id.startswith("pm_")
    assert stripe_fake.objects[customer.payment_method_id]["customer"] == customer.stripe_customer_id == consult_session["customer"]

    missed = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=datetime.fromisoformat("2026-11-24T15:00:00Z")
    )
    later = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=datetime.fromisoformat("2026-11-25T14:00:00Z")
    )
    clock.set(datetime.fromisoformat("2026-11-24T15:10:00Z"))
    await switch_to(client, prescriber, clock)
    marked = await client.post(f"/api/v1/appointments/{missed}/no-show", headers=await csrf_headers(client))
    assert marked.json()["status"] == "no_show", marked.text
    await run_jobs(session_factory, settings, clock)

    [charged] = watch.requests("/v1/payment_intents", "POST")
    [no_show_fee] = await rows(session_factory, Payment, Payment.purpose == "no_show_fee")
    assert (no_show_fee.status, no_show_fee.amount_cents) == ("paid", 7500)
    assert charged.headers["idempotency-key"] == f"fee:{no_show_fee.id}"
    assert (charged.params["amount"], charged.params["customer"], charged.params["payment_method"], charged.params["off_session"]) == (
        "7500",
        customer.stripe_customer_id,
        customer.payment_method_id,
        "true",
    )
    assert stripe_fake.objects[no_show_fee.stripe_payment_intent_id]["status"] == "succeeded"

    await switch_to(client, patient, clock)
    stripe_fake.decline_next_off_session()
    await _cancel_late(client, later)  # 22 h 50 min before
    await run_jobs(session_factory, settings, clock)
    [late_fee] = await rows(session_factory, Payment, Payment.purpose == "late_cancel_fee")
    assert (late_fee.status, late_fee.amount_cents, late_fee.failure_code) == ("open", 5000, "card_declined")
    body = await statement(client)
    assert body["balance_due_cents"] == 5000
    assert sorted((line["kind"], line["amount_cents"], line["label"]) for line in body["ledger"]) == [
        ("charge", 7500, "Missed appointment fee"),
        ("charge", 15000, "Consultation"),
    ]
    subjects = _subjects(smtp, patient.email)
    assert sum(s.startswith("Payment received") for s in subjects) == 1  # the no-show fee
    assert sum(s.startswith(DUE_SUBJECT) for s in subjects) == 1  # the declined late fee


async def test_an_amount_due_gets_a_new_checkout_session_after_the_last_one_expired(client, session_factory, settings, clock, stripe_fake):
    from tests.helpers import deliver_stripe_event, pay_checkout

    prescriber, patient = await prescriber_and_patient(client, session_factory, settings, clock)
    included = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=datetime.fromisoformat("2026-11-24T14:30:00Z")
    )
    await _cancel_late(client, included)
    await run_jobs(session_factory, settings, clock)
    [fee] = await rows(session_factory, Payment, Payment.purpose == "late_cancel_fee")
    watch = StripeWatch(stripe_fake)
    url = f"/api/v1/billing/payments/{fee.id}/checkout"
    first = (await client.post(url, json={}, headers=await csrf_headers(client))).json()
    assert (first["amount_cents"], first["expires_at"]) == (5000, (clock.now() + timedelta(hours=23)).isoformat().replace("+00:00", "Z"))
    assert (await client.post(url, json={}, headers=await csrf_headers(client))).json()["checkout_url"] == first["checkout_url"]
    expired = {**stripe_fake.objects[first["checkout_url"].rsplit("/", 1)[-1]], "status": "expired"}
    answer = await deliver_stripe_event(client, stripe_fake, stripe_fake.event("checkout.session.expired", expired))
    assert answer.json()["outcome"] == "session_closed"
    second = (await client.post(url, json={}, headers=await csrf_headers(client))).json()
    assert second["checkout_url"] != first["checkout_url"] and second["payment_id"] == first["payment_id"]
    # A delayed method that fails: the fee stays due too, with the failure noted.
    failed = {**stripe_fake.objects[second["checkout_url"].rsplit("/", 1)[-1]], "status": "complete", "payment_status": "unpaid"}
    answer = await deliver_stripe_event(client, stripe_fake, stripe_fake.event("checkout.session.async_payment_failed", failed))
    assert answer.json()["outcome"] == "session_closed"
    [fee] = await rows(session_factory, Payment, Payment.purpose == "late_cancel_fee")
    assert (fee.status, fee.failure_code, fee.checkout_url) == ("open", "async_payment_failed", None)
    third = (await client.post(url, json={}, headers=await csrf_headers(client))).json()
    assert third["checkout_url"] not in (first["checkout_url"], second["checkout_url"])
    keys = [r.headers["idempotency-key"] for r in watch.requests("/v1/checkout/sessions", "POST")]
    assert keys == [f"checkout:{fee.id}:1", f"checkout:{fee.id}:2", f"checkout:{fee.id}:3"]
    assert (await statement(client))["balance_due_cents"] == 5000  # still due until paid
    await pay_checkout(client, stripe_fake, third["checkout_url"])
    body = await statement(client)
    assert body["balance_due_cents"] == 0 and [(line["kind"], line["amount_cents"]) for line in body["ledger"]] == [("charge", 5000)]
