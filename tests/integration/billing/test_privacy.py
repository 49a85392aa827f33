"""Nothing about who the patient is or what they are treated for reaches Stripe, over a whole billing life:
intake, paid bookings with a card kept for fees, a released hold, a late cancel, fees charged and declined
and then paid, a coordinator's refund with a free-text reason, a program paid and refunded."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select, update

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.billing import service
from telehealth.billing.models import Payment
from telehealth.billing.settlement import refund_program
from telehealth.billing.states import PaymentPurpose
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from tests.helpers import csrf_headers, make_person, pay_checkout, sign_in
from tests.integration.billing.helpers import (
    StripeWatch,
    book_and_pay,
    coordinator,
    hold_consult,
    insert_appointment,
    plan_row,
    rows,
    run_jobs,
    switch_to,
)
from tests.integration.intake.helpers import CLEAN, complete_intake, submit
from tests.integration.scheduling.helpers import prescriber_with_hours

TREATMENT_WORDS = (
    "ketamine",
    "troche",
    "lozenge",
    "esketamine",
    "depression",
    "depressive",
    "anxiety",
    "ptsd",
    "bipolar",
    "psychosis",
    "schizophrenia",
    "suicid",
    "phq",
    "gad7",
    "gad-7",
    "cssrs",
    "dose",
    "prescription",
    "diagnos",
)


def _answer_values(node) -> list[str]:
    if isinstance(node, dict):
        return [value for child in node.values() for value in _answer_values(child)]
    if isinstance(node, list):
        return [value for child in node for value in _answer_values(child)]
    return [str(node)]


def _distinctive(value: str) -> bool:
    """Answers like "no" or "2" would match any id or timestamp; names, places, dates and phone numbers would not."""
    return (len(value) >= 4 and any(c.isalpha() for c in value)) or len(value) >= 7


async def _rename(session_factory, user_id, full_name: str) -> None:
    async with transaction(session_factory) as session:
        await session.execute(update(UserAccount).where(UserAccount.id == user_id).values(full_name=full_name))


async def test_no_request_to_stripe_carries_identity_or_health_information(client, session_factory, settings, clock, stripe_fake):
    watch = StripeWatch(stripe_fake)
    prescriber = await prescriber_with_hours(session_factory, settings, clock, email="hannelore.vasquez@example.org")
    await _rename(session_factory, prescriber.user_id, "Hannelore Vasquez")
    patient = await make_person(session_factory, role=Role.PATIENT, email="juniper.okafor@example.org", now=clock.now(), settings=settings)
    await _rename(session_factory, patient.user_id, "Juniper Okafor")
    async with transaction(session_factory) as session:
        await session.execute(update(Patient).where(Patient.id == patient.patient_id).values(state_of_residence="NY"))
    await sign_in(client, patient, clock)
    await complete_intake(client)
    assert (await submit(client)).json()["outcome"] == "eligible"

    # A paid consult, keeping the card for fees; a second one; a third held and let go before paying.
    tuesday, _ = await book_and_pay(client, stripe_fake, prescriber, "2026-11-24T15:00:00Z", save_payment_method=True)
    wednesday, _ = await book_and_pay(client, stripe_fake, prescriber, "2026-11-25T15:00:00Z")
    thursday = await hold_consult(client, prescriber, "2026-11-26T15:00:00Z")
    assert (
        await client.post(f"/api/v1/appointments/{thursday['id']}/cancel", json={}, headers=await csrf_headers(client))
    ).status_code == 200
    await run_jobs(session_factory, settings, clock)  # keeps the card, closes Thursday's Checkout Session

    # Late cancels: a paid consult (refund less the fee) and an included session (fee charged to the card).
    included = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=datetime.fromisoformat("2026-11-24T14:00:00Z")
    )
    clock.advance(timedelta(minutes=1))
    for appointment_id in (tuesday["id"], included):
        cancelled = await client.post(
            f"/api/v1/appointments/{appointment_id}/cancel", json={"accept_late_fee": True}, headers=await csrf_headers(client)
        )
        assert cancelled.json()["status"] == "cancelled", cancelled.text
    await run_jobs(session_factory, settings, clock)

    # A missed included session: the card is declined, the patient pays the fee on the billing page.
    missed = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=datetime.fromisoformat("2026-11-23T18:00:00Z")
    )
    clock.set(datetime.fromisoformat("2026-11-23T18:10:00Z"))
    await switch_to(client, prescriber, clock)
    assert (await client.post(f"/api/v1/appointments/{missed}/no-show", headers=await csrf_headers(client))).status_code == 200
    stripe_fake.decline_next_off_session()
    await run_jobs(session_factory, settings, clock)
    [no_show_fee] = await rows(session_factory, Payment, Payment.purpose == "no_show_fee")
    assert no_show_fee.status == "open"
    await switch_to(client, patient, clock)
    due = await client.post(f"/api/v1/billing/payments/{no_show_fee.id}/checkout", json={}, headers=await csrf_headers(client))
    await pay_checkout(client, stripe_fake, due.json()["checkout_url"])

    # The program fee, paid on the billing page and refunded after one shipment.
    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient.patient_id)
    async with transaction(session_factory) as session:
        program = await service.payment_due(
            session, patient_id=patient.patient_id, purpose=PaymentPurpose.PROGRAM, plan_id=plan_id, now=clock.now(), settings=settings
        )
    checkout = await client.post(f"/api/v1/billing/payments/{program.id}/checkout", json={}, headers=await csrf_headers(client))
    await pay_checkout(client, stripe_fake, checkout.json()["checkout_url"])
    async with transaction(session_factory) as session:
        await refund_program(session, plan_id=plan_id, shipments_sent=1, actor=Actor.system(), now=clock.now(), settings=settings)

    # A coordinator's refund whose reason says everything Stripe must never read.
    await switch_to(client, await coordinator(session_factory, settings, clock), clock)
    reason = "Juniper Okafor: ketamine troche titration for depression was paused by Hannelore Vasquez"
    refunded = await client.post(
        f"/api/v1/billing/payments/{wednesday['payment_id']}/refunds",
        json={"amount_cents": 2500, "reason": reason},
        headers=await csrf_headers(client),
    )
    assert refunded.status_code == 201, refunded.text
    await run_jobs(session_factory, settings, clock)

    sent = watch.requests("/")
    paths = {(r.method, r.path.split("/")[2] if r.path.startswith("/v1/") else r.path.split("/")[1]) for r in sent}
    assert {
        ("POST", "customers"),
        ("POST", "checkout"),
        ("POST", "payment_intents"),
        ("GET", "payment_intents"),
        ("POST", "refunds"),
    } <= paths
    assert any(r.path.endswith("/expire") for r in sent)
    assert len(watch.created("refund")) == 3 and len(watch.created("payment_intent")) >= 6

    async with session_factory() as session:
        account_names = (
            (await session.execute(select(UserAccount.full_name).where(UserAccount.id.in_([patient.user_id, prescriber.user_id]))))
            .scalars()
            .all()
        )
    people = [*account_names, patient.email, prescriber.email, patient.email.split("@")[0], prescriber.email.split("@")[0]]
    name_parts = [part for name in account_names for part in name.split() if len(part) >= 4]
    birth = CLEAN["demographics"]["date_of_birth"]
    birth_forms = [birth, birth.replace("-", ""), datetime.fromisoformat(birth).strftime("%m/%d/%Y")]
    answers = [value for value in _answer_values(CLEAN) if _distinctive(value)]
    forbidden = {word.lower() for word in (*people, *name_parts, *birth_forms, *answers, *TREATMENT_WORDS)}
    assert {"juniper", "vasquez", "1985-04-02", "albany", "robin", "1 main street", "+12125550199"} <= forbidden

    texts = [(r, " ".join([r.path, r.raw_body, json.dumps(r.params), *r.headers.values()]).lower()) for r in sent]
    assert any("consultation" in text for _, text in texts) and any("program services" in text for _, text in texts)  # the scan sees bodies
    leaks = [(request.method, request.path, word) for request, text in texts for word in forbidden if word in text]
    assert leaks == []
