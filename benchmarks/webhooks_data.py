"""The Stripe webhook benchmark's data: payments that exist both in the fake Stripe API and in a fresh
database, and the events Stripe would send about them.

The fake (telehealth/devtools/stripe_stand_in.py, run in a subprocess with no webhook URL, so it sends nothing itself)
holds the Stripe side, made through its HTTP API as the app's gateway would: one Checkout Session per
payment (metadata.payment_id and payment_intent_data.metadata.payment_id set, as
`StripeGateway.create_checkout_session` sets them), paid through its pay endpoint (POST /pay/{id}, which
makes the PaymentIntent and the Charge) or expired (POST /v1/checkout/sessions/{id}/expire); refunds made
in the fake (POST /v1/refunds, as from Stripe's dashboard). The events carry the fake's own objects read
back afterwards (the session, the charge after each refund), so any PaymentIntent the app re-reads by id
is there, with the metadata a real one would have. Disputes are not faked by it: their object is built
here from the real charge and PaymentIntent ids.

The database (created afresh on every run, migrated with the app's migrations, filled by COPY): one
patient per payment, each with a consult held for them (the hold lasts as long as the Checkout Session,
30 minutes) with one of `prescribers` prescribers, and the open payment for it with the Checkout Session's
id, as `checkout_for_held_appointment` leaves them.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from benchmarks.waitlist_data import database_url, migrate, plain_dsn, recreate_database
from telehealth.settings import Settings

CONSULT_FEE_CENTS = Settings.consult_fee_cents  # the clinic's default consult fee
CHECKOUT_HOLD = timedelta(minutes=30)  # billing.service.CHECKOUT_HOLD
CONSULT = timedelta(minutes=45)
BUFFER_AFTER = timedelta(minutes=10)
API_VERSION = "2026-10-28.endive"  # the fake's (stripe==16.1.0's pinned version)
NO_SIGN_IN = "!benchmark-account-without-password"  # not an Argon2 hash: nobody signs in


@dataclass
class PaymentPlan:
    """One payment and what happens to it at Stripe."""

    index: int
    payment_id: uuid.UUID
    patient_id: uuid.UUID
    appointment_id: uuid.UUID
    email: str
    amount_cents: int
    paid: bool  # completed (else the session expires unpaid)
    refund_steps: list[int] = field(default_factory=list)  # amount of each refund made at Stripe, in order
    disputed: bool = False
    session_id: str = ""
    payment_intent: str | None = None
    charge: str | None = None

    @property
    def refunded_cents(self) -> int:
        return sum(self.refund_steps)


@dataclass
class Event:
    """One distinct Stripe event (delivered once, or more as duplicates)."""

    id: str
    type: str
    payment: int  # PaymentPlan.index
    body: dict[str, Any]


@dataclass
class Dataset:
    payments: list[PaymentPlan]
    events: list[Event]
    facts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def plan_payments(
    rng: random.Random,
    *,
    distinct_events: int,
    paid_share: float,
    refund_share: float,
    second_refund_share: float,
    full_refund_share: float,
    dispute_share: float,
    amount_cents: int,
    tag: str = "",
) -> list[PaymentPlan]:
    """As many payments as make exactly `distinct_events` events: one completion or expiry each, a refund for
    `refund_share` of the paid ones (a second one for `second_refund_share` of those; `full_refund_share` of
    them end fully refunded) and a dispute for `dispute_share` of the paid ones (never a fully refunded one;
    the disputes also take up the last event or two when the shares do not come out exactly)."""

    def counts(total: int) -> tuple[int, int, int, int]:
        paid = round(total * paid_share)
        refunded = round(paid * refund_share)
        return paid, refunded, round(refunded * second_refund_share), round(paid * dispute_share)

    total = 1
    while True:
        paid, refunded, twice, disputed = counts(total + 1)
        if total + 1 + refunded + twice + disputed > distinct_events:
            break
        total += 1
    paid, refunded, twice, disputed = counts(total)
    disputed += distinct_events - (total + refunded + twice + disputed)
    fates = [True] * paid + [False] * (total - paid)
    rng.shuffle(fates)
    payments = [
        PaymentPlan(index, uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), f"bench-webhook{tag}-{index:05d}@example.com", amount_cents, fate)
        for index, fate in enumerate(fates)
    ]
    paid_ones = [p for p in payments if p.paid]
    to_refund = rng.sample(paid_ones, refunded)
    full = round(refunded * full_refund_share)
    dollars = amount_cents // 100
    for number, payment in enumerate(to_refund):
        fully = number < full
        two = twice > 0 and (number % max(1, refunded // twice) == 0) and sum(len(p.refund_steps) == 2 for p in to_refund) < twice
        first = rng.randrange(1, dollars) * 100 if dollars > 1 else amount_cents
        if two and first < amount_cents:
            rest = amount_cents - first
            second = rest if fully else max(100, rest // 200 * 100) if rest >= 200 else rest
            payment.refund_steps = [first, second]
        else:
            payment.refund_steps = [amount_cents if fully else first]
    short = twice - sum(len(p.refund_steps) == 2 for p in to_refund)
    for payment in to_refund:  # make up the second refunds the stride missed
        if short <= 0:
            break
        if len(payment.refund_steps) == 1 and payment.refund_steps[0] < amount_cents - 100:
            payment.refund_steps.append(100)
            short -= 1
    disputable = [p for p in paid_ones if p.refunded_cents < p.amount_cents]
    for payment in rng.sample(disputable, min(disputed, len(disputable))):
        payment.disputed = True
    return payments


def _form(payment: PaymentPlan, *, expires_at: int, base_url: str) -> dict[str, str]:
    """What StripeGateway.create_checkout_session sends, form-encoded (no customer: not needed here)."""
    ref = str(payment.payment_id)
    return {
        "mode": "payment",
        "client_reference_id": ref,
        "metadata[payment_id]": ref,
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": str(payment.amount_cents),
        "line_items[0][price_data][product_data][name]": "Consultation",
        "payment_intent_data[metadata][payment_id]": ref,
        "expires_at": str(expires_at),
        "success_url": f"{base_url}/billing/return?payment={ref}",
        "cancel_url": f"{base_url}/billing/payments/{ref}/pay",
    }


def make_event(type_: str, obj: dict[str, Any], *, payment: int, created: int) -> Event:
    event_id = f"evt_{secrets.token_hex(12)}"
    body = {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": created,
        "api_version": API_VERSION,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }
    return Event(event_id, type_, payment, body)


async def stripe_side(fake_url: str, payments: list[PaymentPlan], *, in_flight: int = 8) -> list[Event]:
    """Make every payment's history in the fake and answer the events it gives rise to (in the order they
    happened for each payment: completion or expiry, refunds, dispute)."""
    now = int(time.time())
    expires_at = now + int(CHECKOUT_HOLD.total_seconds())
    happened = now - 3600  # events are dated in the past: the webhook refuses one dated 5 minutes ahead of its clock
    events: list[Event] = []
    gate = asyncio.Semaphore(in_flight)
    headers = {"Authorization": "Bearer sk_test_benchmark"}

    async def one(client: httpx.AsyncClient, payment: PaymentPlan) -> list[Event]:
        async def call(method: str, path: str, data: dict[str, str] | None = None) -> dict[str, Any]:
            response = await client.request(method, path, data=data)
            if response.status_code != 200:
                raise RuntimeError(f"the fake Stripe answered {method} {path} with {response.status_code}: {response.text[:300]}")
            return response.json()

        async with gate:
            mine: list[Event] = []
            created = await call("POST", "/v1/checkout/sessions", _form(payment, expires_at=expires_at, base_url="https://portal.example"))
            payment.session_id = created["id"]
            if not payment.paid:
                expired = await call("POST", f"/v1/checkout/sessions/{payment.session_id}/expire")
                return [make_event("checkout.session.expired", expired, payment=payment.index, created=happened)]
            paid = await client.post(f"/pay/{payment.session_id}")  # the pay page's button
            if paid.status_code != 303:
                raise RuntimeError(f"the fake's pay page answered {paid.status_code}: {paid.text[:300]}")
            session = await call("GET", f"/v1/checkout/sessions/{payment.session_id}")
            payment.payment_intent = session["payment_intent"]
            mine.append(make_event("checkout.session.completed", session, payment=payment.index, created=happened))
            intent = await call("GET", f"/v1/payment_intents/{payment.payment_intent}")
            payment.charge = intent["latest_charge"]
            for step, amount in enumerate(payment.refund_steps):
                await call("POST", "/v1/refunds", {"payment_intent": payment.payment_intent, "amount": str(amount)})
                charge = await call("GET", f"/v1/charges/{payment.charge}")
                mine.append(make_event("charge.refunded", charge, payment=payment.index, created=happened + 60 * (step + 1)))
            if payment.disputed:
                dispute = {
                    "id": f"dp_{secrets.token_hex(12)}",
                    "object": "dispute",
                    "amount": payment.amount_cents,
                    "currency": "usd",
                    "charge": payment.charge,
                    "payment_intent": payment.payment_intent,
                    "reason": "fraudulent",
                    "status": "needs_response",
                    "is_charge_refundable": False,
                    "livemode": False,
                    "metadata": {},
                    "created": happened + 3000,
                }
                mine.append(make_event("charge.dispute.created", dispute, payment=payment.index, created=happened + 3000))
            return mine

    async with httpx.AsyncClient(base_url=fake_url, headers=headers, timeout=30) as client:
        for found in await asyncio.gather(*(one(client, payment) for payment in payments)):
            events += found
    return events


def _user(user_id: uuid.UUID, email: str, name: str, role: str, now: datetime) -> tuple[Any, ...]:
    return (user_id, email, name, role, NO_SIGN_IN, True, now, 0, now)


USER_COLUMNS = ["id", "email", "full_name", "role", "password_hash", "is_active", "email_verified_at", "failed_login_count", "created_at"]


async def database_side(url: str, payments: list[PaymentPlan], *, prescribers: int, now: datetime, tag: str = "") -> None:
    """Patients, prescribers, held consults and open payments, as `checkout_for_held_appointment` leaves them
    (`tag` keeps the emails of a second batch apart from the first's)."""
    hold_expires = now + CHECKOUT_HOLD
    clinicians = [uuid.uuid4() for _ in range(prescribers)]
    users = [
        _user(cid, f"bench-webhook{tag}-rx-{n:03d}@example.com", f"Prescriber {n:03d}", "prescriber", now)
        for n, cid in enumerate(clinicians)
    ]
    profiles = [(cid, None, "America/New_York", now) for cid in clinicians]
    patients, appointments, rows = [], [], []
    first_start = (now + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    for payment in payments:
        user_id = uuid.uuid4()
        users.append(_user(user_id, payment.email, f"Patient {payment.index:05d}", "patient", now))
        patients.append((payment.patient_id, user_id, "America/Los_Angeles", "CA", now))
        clinician = clinicians[payment.index % prescribers]
        start = first_start + timedelta(hours=payment.index // prescribers)  # an hour apart per prescriber: no overlaps
        appointments.append(
            (
                payment.appointment_id,
                "consult",
                clinician,
                payment.patient_id,
                "held",
                start,
                start + CONSULT,
                start,
                start + CONSULT + BUFFER_AFTER,
                hold_expires,
                secrets.token_urlsafe(24),
                0,
                now,
                None,
            )
        )
        rows.append(
            (
                payment.payment_id,
                payment.patient_id,
                "consult",
                "open",
                payment.amount_cents,
                0,
                "usd",
                payment.appointment_id,
                None,
                False,
                payment.session_id,
                None,
                f"http://fake-stripe/pay/{payment.session_id}",
                1,
                hold_expires,
                now,
            )
        )
    connection = await asyncpg.connect(plain_dsn(url))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table("user_account", records=users, columns=USER_COLUMNS)
            await connection.copy_records_to_table(
                "clinician_profile", records=profiles, columns=["user_id", "npi", "timezone", "created_at"]
            )
            await connection.copy_records_to_table(
                "patient", records=patients, columns=["id", "user_id", "timezone", "state_of_residence", "created_at"]
            )
            await connection.copy_records_to_table(
                "appointment",
                records=appointments,
                columns=[
                    "id",
                    "appointment_type",
                    "clinician_id",
                    "patient_id",
                    "status",
                    "starts_at",
                    "ends_at",
                    "busy_from",
                    "busy_until",
                    "hold_expires_at",
                    "room_token",
                    "ics_sequence",
                    "created_at",
                    "cancelled_at",
                ],
            )
            await connection.copy_records_to_table(
                "payment",
                records=rows,
                columns=[
                    "id",
                    "patient_id",
                    "purpose",
                    "status",
                    "amount_cents",
                    "refunded_cents",
                    "currency",
                    "appointment_id",
                    "plan_id",
                    "save_payment_method",
                    "stripe_checkout_session_id",
                    "stripe_payment_intent_id",
                    "checkout_url",
                    "checkout_attempts",
                    "checkout_expires_at",
                    "created_at",
                ],
            )
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()


async def load(
    admin_url: str,
    name: str,
    fake_url: str,
    *,
    distinct_events: int,
    paid_share: float,
    refund_share: float,
    second_refund_share: float,
    full_refund_share: float,
    dispute_share: float,
    amount_cents: int,
    prescribers: int,
    seed: int,
    log: Any,
) -> Dataset:
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    url = database_url(admin_url, name)
    step = time.perf_counter()
    await recreate_database(admin_url, name)
    await migrate(url)
    timings["create and migrate"] = time.perf_counter() - step
    payments = plan_payments(
        rng,
        distinct_events=distinct_events,
        paid_share=paid_share,
        refund_share=refund_share,
        second_refund_share=second_refund_share,
        full_refund_share=full_refund_share,
        dispute_share=dispute_share,
        amount_cents=amount_cents,
    )
    log(f"  {len(payments)} payments; making their sessions, payments and refunds in the fake Stripe ...")
    step = time.perf_counter()
    events = await stripe_side(fake_url, payments)
    timings["Stripe side (fake API)"] = time.perf_counter() - step
    step = time.perf_counter()
    now = datetime.now(UTC)
    await database_side(url, payments, prescribers=prescribers, now=now)
    timings["database rows (COPY) and VACUUM (ANALYZE)"] = time.perf_counter() - step
    paid = [p for p in payments if p.paid]
    facts = {
        "payments": len(payments),
        "paid": len(paid),
        "expired": len(payments) - len(paid),
        "refunded at Stripe": sum(1 for p in paid if p.refund_steps),
        "of which twice": sum(1 for p in paid if len(p.refund_steps) == 2),
        "of which fully": sum(1 for p in paid if p.refund_steps and p.refunded_cents == p.amount_cents),
        "disputed": sum(1 for p in paid if p.disputed),
        "amount_cents": amount_cents,
        "prescribers": prescribers,
        "events by type": {t: sum(1 for e in events if e.type == t) for t in sorted({e.type for e in events})},
    }
    return Dataset(payments, events, facts, timings)
