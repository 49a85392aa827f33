"""The fake Stripe API, driven by the real `stripe` client (async methods), as billing will drive it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import stripe

from telehealth.devtools.stripe_stand_in import FakeStripe, parse_form, sign_payload

# stripe's HTTPXClient posts its form body with `data=<str>`; httpx deprecates that. Only that warning.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning")

CONSULT = {
    "mode": "payment",
    "line_items": [{"price_data": {"currency": "usd", "unit_amount": 5000, "product_data": {"name": "Consult"}}, "quantity": 1}],
    "metadata": {"payment_id": "pay-1"},
    "client_reference_id": "appt-1",
    "success_url": "http://app.test/billing/done?session={CHECKOUT_SESSION_ID}",
    "cancel_url": "http://app.test/billing/cancelled",
}
ClientFactory = Callable[..., stripe.StripeClient]


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
async def make_client(fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ClientFactory]:
    """Clients built the way the app builds them; the retry back-off shortened so the tests stay fast."""
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    http_clients: list[stripe.HTTPXClient] = []

    def make(*, timeout: float = 5, max_network_retries: int = 2) -> stripe.StripeClient:
        http_clients.append(stripe.HTTPXClient(timeout=timeout))
        return stripe.StripeClient(
            "sk_test_fake", http_client=http_clients[-1], base_addresses={"api": fake.base_url}, max_network_retries=max_network_retries
        )

    yield make
    for http_client in http_clients:
        await http_client.close_async()


@pytest.fixture
def client(make_client: ClientFactory) -> stripe.StripeClient:
    return make_client()


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append((body, self.headers["Stripe-Signature"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhooks(fake: FakeStripe) -> Iterator[list[tuple[str, str]]]:
    """A tiny webhook endpoint; the fake posts there. Yields the (payload, Stripe-Signature) pairs it got."""
    received: list[tuple[str, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Receiver", (_Receiver,), {"received": received}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe"
    yield received
    server.shutdown()
    server.server_close()


def event_types(received: list[tuple[str, str]]) -> list[str]:
    return [json.loads(payload)["type"] for payload, _ in received]


async def pay(fake: FakeStripe, client: stripe.StripeClient, setup_future_usage: bool = False) -> stripe.PaymentIntent:
    customer = await client.v1.customers.create_async(params={"metadata": {"patient_id": "pat-1"}})
    params = {**CONSULT, "customer": customer.id}
    if setup_future_usage:
        params["payment_intent_data"] = {"setup_future_usage": "off_session", "metadata": {"payment_id": "pay-1"}}
    session = await client.v1.checkout.sessions.create_async(params=params)
    paid = fake.complete_checkout(session.id)
    return await client.v1.payment_intents.retrieve_async(paid["payment_intent"])


def test_form_parsing_builds_nested_dicts_and_lists():
    body = "line_items[1][quantity]=2&line_items[0][price_data][unit_amount]=5000&metadata[payment_id]=p&metadata[empty]=&mode=payment"
    assert parse_form(body) == {
        "line_items": [{"price_data": {"unit_amount": "5000"}}, {"quantity": "2"}],
        "metadata": {"payment_id": "p", "empty": ""},
        "mode": "payment",
    }


async def test_session_is_created_retrieved_and_expired_once(fake: FakeStripe, client: stripe.StripeClient, webhooks):
    session = await client.v1.checkout.sessions.create_async(params=CONSULT, options={"idempotency_key": "hold-1"})
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert (session.status, session.payment_status, session.amount_total, session.currency) == ("open", "unpaid", 5000, "usd")
    assert session.url == f"{fake.base_url}/pay/{session.id}"
    assert session.metadata.to_dict() == {"payment_id": "pay-1"} and session.client_reference_id == "appt-1"
    assert fake.requests[-1].params["line_items"][0]["price_data"]["unit_amount"] == "5000"
    assert fake.requests[-1].headers["idempotency-key"] == "hold-1"

    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    assert (await client.v1.checkout.sessions.expire_async(session.id)).status == "expired"
    assert event_types(webhooks) == ["checkout.session.expired"]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.checkout.sessions.expire_async(session.id)
    assert refused.value.http_status == 400


async def test_unknown_ids_are_resource_missing(client: stripe.StripeClient):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.charges.retrieve_async("ch_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


async def test_same_idempotency_key_replays_the_first_answer_and_creates_nothing(fake: FakeStripe, client: stripe.StripeClient):
    first = await client.v1.checkout.sessions.create_async(params=CONSULT, options={"idempotency_key": "hold-1"})
    again = await client.v1.checkout.sessions.create_async(params=CONSULT, options={"idempotency_key": "hold-1"})
    assert again.to_dict() == first.to_dict()
    assert len(fake.created("checkout.session")) == 1


async def test_concurrent_requests_with_one_key_create_one_object(fake: FakeStripe, client: stripe.StripeClient):
    create = client.v1.checkout.sessions.create_async
    sessions = await asyncio.gather(*(create(params=CONSULT, options={"idempotency_key": "hold-1"}) for _ in range(8)))
    assert len({s.id for s in sessions}) == 1 and len(fake.created("checkout.session")) == 1


async def test_same_idempotency_key_with_other_params_is_an_idempotency_error(fake: FakeStripe, client: stripe.StripeClient):
    await client.v1.checkout.sessions.create_async(params=CONSULT, options={"idempotency_key": "hold-1"})
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.checkout.sessions.create_async(
            params={**CONSULT, "metadata": {"payment_id": "pay-2"}}, options={"idempotency_key": "hold-1"}
        )
    assert len(fake.created("checkout.session")) == 1


async def test_a_slow_answer_is_retried_with_the_same_key_and_creates_one_session(fake: FakeStripe, make_client: ClientFactory):
    fake.slow_next("/v1/checkout/sessions", seconds=0.6)
    client = make_client(timeout=0.3, max_network_retries=2)
    session = await client.v1.checkout.sessions.create_async(params=CONSULT, options={"idempotency_key": "hold-1"})
    assert [s["id"] for s in fake.created("checkout.session")] == [session.id]
    attempts = [r.headers["idempotency-key"] for r in fake.requests if r.path == "/v1/checkout/sessions"]
    assert len(attempts) >= 2 and set(attempts) == {"hold-1"}


async def test_fail_next_raises_api_error_and_creates_nothing(fake: FakeStripe, make_client: ClientFactory):
    fake.fail_next("/v1/checkout/sessions")
    with pytest.raises(stripe.APIError) as failed:
        await make_client(max_network_retries=0).v1.checkout.sessions.create_async(params=CONSULT)
    assert failed.value.http_status == 500
    assert fake.created("checkout.session") == []


async def test_fail_next_then_the_clients_retry_succeeds(fake: FakeStripe, client: stripe.StripeClient):
    fake.fail_next("/v1/checkout/sessions", status=503)
    session = await client.v1.checkout.sessions.create_async(params=CONSULT)
    assert [s["id"] for s in fake.created("checkout.session")] == [session.id]
    assert len([r for r in fake.requests if r.path == "/v1/checkout/sessions"]) == 2


async def test_complete_checkout_sends_a_correctly_signed_event(fake: FakeStripe, client: stripe.StripeClient, webhooks):
    intent = await pay(fake, client, setup_future_usage=True)
    ((payload, signature),) = webhooks
    event = stripe.Webhook.construct_event(payload, signature, fake.webhook_secret)
    assert event.type == "checkout.session.completed"
    session = event.data.object
    assert (session.status, session.payment_status, session.payment_intent) == ("complete", "paid", intent.id)
    assert (intent.status, intent.amount, intent.metadata.to_dict()) == ("succeeded", 5000, {"payment_id": "pay-1"})
    assert intent.payment_method.startswith("pm_") and fake.objects[intent.payment_method]["customer"] == session.customer
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.amount, charge.amount_refunded, charge.payment_intent) == (5000, 0, intent.id)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, sign_payload(payload, "whsec_other", int(event.created)), fake.webhook_secret)


async def test_refunds_partial_then_the_rest_then_refused(fake: FakeStripe, client: stripe.StripeClient, webhooks):
    intent = await pay(fake, client)
    first = await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 2000, "reason": "requested_by_customer"})
    assert (first.status, first.amount, first.charge) == ("succeeded", 2000, intent.latest_charge)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 3001})
    assert too_much.value.code == "amount_too_large"
    rest = await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert rest.amount == 3000
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (5000, True)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 1})
    assert refused.value.code == "charge_already_refunded"
    refunded = [json.loads(payload)["data"]["object"]["amount_refunded"] for payload, _ in webhooks[1:]]
    assert event_types(webhooks) == ["checkout.session.completed", "charge.refunded", "charge.refunded"] and refunded == [2000, 5000]


async def test_off_session_payment_succeeds_then_a_declined_one_is_a_card_error(fake: FakeStripe, client: stripe.StripeClient):
    saved = await pay(fake, client, setup_future_usage=True)
    off_session = {
        "customer": saved.customer,
        "payment_method": saved.payment_method,
        "amount": 1500,
        "currency": "usd",
        "confirm": True,
        "off_session": True,
        "metadata": {"payment_id": "pay-2"},
    }
    charged = await client.v1.payment_intents.create_async(params=off_session)
    assert (charged.status, charged.amount) == ("succeeded", 1500) and charged.latest_charge.startswith("ch_")

    fake.decline_next_off_session()
    with pytest.raises(stripe.CardError) as declined:
        await client.v1.payment_intents.create_async(params=off_session)
    assert (declined.value.http_status, declined.value.code) == (402, "card_declined")
    intent_id = declined.value.json_body["error"]["payment_intent"]["id"]
    assert (await client.v1.payment_intents.retrieve_async(intent_id)).status == "requires_payment_method"


def test_pay_page_shows_the_amount_and_redirects_to_success(fake: FakeStripe):
    with httpx.Client(base_url=fake.base_url) as browser:
        created = browser.post(
            "/v1/checkout/sessions",
            headers={"Authorization": "Bearer sk_test_fake"},
            data={
                "mode": "payment",
                "success_url": CONSULT["success_url"],
                "line_items[0][quantity]": "1",
                "line_items[0][price_data][currency]": "usd",
                "line_items[0][price_data][unit_amount]": "5000",
                "line_items[0][price_data][product_data][name]": "Consult",
            },
        )
        session_id = created.json()["id"]
        page = browser.get(f"/pay/{session_id}")
        assert "Test checkout" in page.text and "$50.00" in page.text and ">Pay</button>" in page.text
        paid = browser.post(f"/pay/{session_id}")
        assert paid.status_code == 303
        assert paid.headers["location"] == f"http://app.test/billing/done?session={session_id}"
        assert "already paid" in browser.get(f"/pay/{session_id}").text
        assert fake.objects[session_id]["payment_status"] == "paid"


async def test_with_a_state_file_a_restarted_fake_keeps_its_objects_and_port(tmp_path, monkeypatch):
    """The demo's stand-in restarts with the demo: the customer, an open session (on the same pay page) and a
    charge to refund are still there, and an idempotent request made before answers the same after."""
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    state = tmp_path / "stripe-stand-in.json"

    async def with_client(fake: FakeStripe, work):  # type: ignore[no-untyped-def]
        http_client = stripe.HTTPXClient(timeout=5)
        try:
            return await work(stripe.StripeClient("sk_test_fake", http_client=http_client, base_addresses={"api": fake.base_url}))
        finally:
            await http_client.close_async()

    with FakeStripe(state_path=state) as first:

        async def begin(client: stripe.StripeClient):  # type: ignore[no-untyped-def]
            customer = await client.v1.customers.create_async(
                params={"metadata": {"patient_ref": "p"}}, options={"idempotency_key": "customer:p"}
            )
            open_session = await client.v1.checkout.sessions.create_async(params={**CONSULT, "customer": customer.id})
            paid_session = await client.v1.checkout.sessions.create_async(params={**CONSULT, "customer": customer.id})
            return customer, open_session, paid_session

        customer, open_session, paid_session = await with_client(first, begin)
        paid = await asyncio.to_thread(first.complete_checkout, paid_session.id)
        port = first.port

    with FakeStripe(state_path=state) as second:
        assert second.port == port and open_session.url == f"{second.base_url}/pay/{open_session.id}"

        async def go_on(client: stripe.StripeClient):  # type: ignore[no-untyped-def]
            again = await client.v1.customers.create_async(
                params={"metadata": {"patient_ref": "p"}}, options={"idempotency_key": "customer:p"}
            )
            still_open = await client.v1.checkout.sessions.retrieve_async(open_session.id)
            another = await client.v1.checkout.sessions.create_async(params={**CONSULT, "customer": customer.id})  # the customer is known
            refund = await client.v1.refunds.create_async(params={"payment_intent": paid["payment_intent"], "amount": 1000})
            return again, still_open, another, refund

        again, still_open, another, refund = await with_client(second, go_on)
        assert again.id == customer.id and still_open.status == "open" and another.customer == customer.id
        assert refund.status == "succeeded"
        assert httpx.get(open_session.url).status_code == 200  # its pay page answers
