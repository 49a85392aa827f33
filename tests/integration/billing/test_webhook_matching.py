"""A signed event settles a payment only when it is that payment's (issue 20, item 2): the payment's own
Checkout Session id, its amount and currency, mode `payment`, found by metadata.payment_id alone (no
client_reference_id fallback). A mismatch is audited and answered 200 `refused_...` (so Stripe does not
retry an event that can never match) and the payment stays open; a signature or event timestamp more than
five minutes in the future is refused 400 and stores nothing. The genuine completion still settles."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from telehealth.audit.models import AuditEvent
from telehealth.billing.models import StripeEvent
from telehealth.devtools.stripe_stand_in import FakeStripe
from tests.helpers import deliver_stripe_event
from tests.integration.billing.helpers import (
    appointment_status,
    checkout_for,
    complete_on_stripe,
    deliver,
    hold_consult,
    prescriber_and_patient,
    rows,
    run_jobs,
    session_id_of,
    statement,
)


def forged_completion(fake: FakeStripe, held: dict, **changes) -> dict:
    """A checkout.session.completed for the held payment's session as Stripe would send it once paid, changed."""
    session = {
        **fake.objects[session_id_of(held["checkout_url"])],
        "status": "complete",
        "payment_status": "paid",
        "payment_intent": "pi_forged_0001",
    }
    return fake.event("checkout.session.completed", {**session, **changes})


async def still_open(client, held: dict) -> None:
    [payment] = (await statement(client))["payments"]
    assert (payment["id"], payment["status"]) == (held["payment_id"], "open")
    assert await appointment_status(client, held["id"]) == "held"
    assert (await statement(client))["ledger"] == []


async def refusals(session_factory) -> list[tuple[str, str, str]]:
    async with session_factory() as session:
        found = await session.execute(
            select(AuditEvent.resource_id, AuditEvent.outcome, AuditEvent.reason).where(AuditEvent.action == "payment.webhook_refused")
        )
        return [tuple(row) for row in found]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": "cs_test_another_session_0001", "amount_total": 100}, "session_mismatch"),  # the review's finding
        ({"id": "cs_test_another_session_0002"}, "session_mismatch"),
        ({"amount_total": 100, "amount_subtotal": 100}, "amount_mismatch"),
        ({"currency": "eur"}, "currency_mismatch"),
        ({"mode": "subscription"}, "not_payment_mode"),
    ],
)
async def test_an_event_that_is_not_this_payments_session_settles_nothing(
    client, session_factory, settings, clock, stripe_fake, changes, reason
):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    forged = forged_completion(stripe_fake, held, **changes)

    await deliver(client, stripe_fake, forged, outcome=f"refused_{reason}")
    await deliver(client, stripe_fake, forged, outcome="duplicate")  # stored: a redelivery is not acted on again
    await still_open(client, held)
    assert await refusals(session_factory) == [(held["payment_id"], "denied", reason)]

    await deliver(client, stripe_fake, await complete_on_stripe(stripe_fake, held["checkout_url"]), outcome="paid")
    assert await appointment_status(client, held["id"]) == "booked"


async def test_client_reference_id_alone_names_no_payment(client, session_factory, settings, clock, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    forged = forged_completion(stripe_fake, held, metadata={}, client_reference_id=held["payment_id"])
    await deliver(client, stripe_fake, forged, outcome="ignored")
    await still_open(client, held)
    await deliver(client, stripe_fake, await complete_on_stripe(stripe_fake, held["checkout_url"]), outcome="paid")


async def test_a_timestamp_in_the_future_is_refused_and_stores_nothing(client, session_factory, settings, clock, stripe_fake):
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    event = await complete_on_stripe(stripe_fake, held["checkout_url"])
    now = int(time.time())

    signed_ahead = await deliver_stripe_event(client, stripe_fake, event, timestamp=now + 6 * 60)
    created_ahead = await deliver_stripe_event(client, stripe_fake, {**event, "created": now + 6 * 60})
    for answer in (signed_ahead, created_ahead):
        assert (answer.status_code, answer.json()["code"]) == (400, "webhook.timestamp_in_future"), answer.text
    assert await rows(session_factory, StripeEvent) == []
    await still_open(client, held)

    # A little skew between Stripe's clock and ours is fine.
    answer = await deliver_stripe_event(client, stripe_fake, {**event, "created": now + 60}, timestamp=now + 60)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "paid"), answer.text
    assert await appointment_status(client, held["id"]) == "booked"


async def test_a_session_replaced_in_its_last_minute_is_closed_at_stripe(client, session_factory, settings, clock, stripe_fake):
    """Only the stored session settles its payment, so the one a new session replaces must not stay payable."""
    prescriber, _ = await prescriber_and_patient(client, session_factory, settings, clock)
    held = await hold_consult(client, prescriber)
    clock.advance(timedelta(minutes=29, seconds=30))  # half a minute left: asking to pay makes a new session
    renewed = await checkout_for(client, held)
    assert renewed["checkout_url"] != held["checkout_url"]
    await run_jobs(session_factory, settings, clock)
    assert stripe_fake.objects[session_id_of(held["checkout_url"])]["status"] == "expired"
    await deliver(client, stripe_fake, await complete_on_stripe(stripe_fake, renewed["checkout_url"]), outcome="paid")
