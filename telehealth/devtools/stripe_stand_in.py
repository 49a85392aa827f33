"""A local fake of the slice of Stripe's HTTP API that billing uses, for the real `stripe` client to talk to.

Fakes: customers; Checkout Sessions in payment mode (create, retrieve, expire, and a tiny pay page at
/pay/{id} that completes them); off-session PaymentIntents (create confirmed, retrieve); refunds; charges
(retrieve); Idempotency-Key replay and mismatch errors; Stripe-shaped JSON errors with the status codes the
client maps to its exceptions; webhooks signed like Stripe's (`Stripe-Signature: t=...,v1=...`). Test knobs:
`fail_next`, `slow_next`, `decline_next_off_session`.

Does not fake: API key checks (any Bearer or Basic key is accepted), Stripe-Version, `expand[]`, list/search endpoints,
3-D Secure or any `requires_action` flow, PaymentIntents that are not confirmed off-session, the 30 min..24 h
window on a session's `expires_at`, event retries and most event types (only checkout.session.completed,
checkout.session.expired and charge.refunded are sent, synchronously, before the API call answers).

With `state_path` (the demo: `python app.py` keeps it in its data folder) the objects and idempotent answers
are written to that JSON file after every change and read back at the next start, on the same port when it
is free: customers, open Checkout Sessions, saved cards and charges to refund survive a restart of the demo.

Run in the foreground: `python -m telehealth.devtools.stripe_stand_in --port 12111 [--webhook-url URL] [--webhook-secret S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn

API_VERSION = "2026-10-28.endive"  # stripe==16.1.0's pinned version
REFUND_REASONS = {"duplicate", "fraudulent", "requested_by_customer"}
DECLINE = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."}


def sign_payload(payload: str, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header value for `payload` signed with `secret` at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding into nested dicts and lists: `a[b][0][c]=1` -> {"a": {"b": [{"c": "1"}]}}."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node = root
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):  # `metadata=` (unset) followed by `metadata[a]=b`
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return _lists_from_indexed_dicts(root)


def _lists_from_indexed_dicts(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indexed_dicts(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class StripeError(Exception):
    """An error answer: `{"error": {...}}` with `status`."""

    def __init__(self, status: int, type: str, message: str, *, code: str | None = None, param: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type, "message": message, "code": code, "param": param, **extra}}


def _invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, param=param, code=code)


def _int(params: dict[str, Any], key: str, *, default: int | None = None) -> int:
    raw = params.get(key)
    if raw is None:
        if default is None:
            raise _invalid(f"Missing required param: {key}.", param=key, code="parameter_missing")
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise _invalid(f"Invalid integer: {raw}", param=key, code="parameter_invalid_integer") from None


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]
    raw_body: str


@dataclass
class _Trigger:
    path_prefix: str
    times: int
    value: float


class FakeStripe:
    def __init__(
        self,
        port: int | None = None,
        *,
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_test_fake",
        state_path: Path | None = None,
    ) -> None:
        self.state_path = state_path
        saved = self._read_state()
        self.port = port or (saved["port"] if saved and _port_is_free(saved["port"]) else _free_port())
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.requests: list[RecordedRequest] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []  # every event the fake emitted, sent or not
        self.webhook_deliveries: list[tuple[str, int | str]] = []  # (event id, HTTP status or error)
        self._lock = threading.RLock()
        self._failures: list[_Trigger] = []
        self._delays: list[_Trigger] = []
        self._decline_next = False
        self._idempotent: dict[str, tuple[str, int, str]] = {}  # key -> (request fingerprint, status, body)
        self._pending_events: list[dict[str, Any]] = []
        self._payment_intent_data: dict[str, dict[str, Any]] = {}  # session id -> payment_intent_data
        self._item_names: dict[str, list[str]] = {}  # session id -> line item names, for the pay page
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., dict[str, Any]]]] = [
            ("POST", re.compile(r"/v1/customers"), self._create_customer),
            ("POST", re.compile(r"/v1/checkout/sessions"), self._create_session),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), lambda params, id: self._get("checkout.session", id)),
            ("POST", re.compile(r"/v1/checkout/sessions/([^/]+)/expire"), self._expire_session),
            ("POST", re.compile(r"/v1/payment_intents"), self._create_payment_intent),
            ("GET", re.compile(r"/v1/payment_intents/([^/]+)"), lambda params, id: self._get("payment_intent", id)),
            ("POST", re.compile(r"/v1/refunds"), self._create_refund),
            ("GET", re.compile(r"/v1/charges/([^/]+)"), lambda params, id: self._get("charge", id)),
        ]
        if saved:
            self._restore(saved)

    # -- state kept across restarts (state_path) ---------------------------------------------------------------

    def _read_state(self) -> dict[str, Any] | None:
        if self.state_path is None or not self.state_path.exists():
            return None
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None  # unreadable: start empty rather than not at all

    def _restore(self, saved: dict[str, Any]) -> None:
        self.objects = saved["objects"]
        self._payment_intent_data = saved["payment_intent_data"]
        self._item_names = saved["item_names"]
        self._idempotent = {key: tuple(answer) for key, answer in saved["idempotent"].items()}
        for obj in self.objects.values():  # the pay page moves with the port when the old one was taken
            if obj["object"] == "checkout.session":
                obj["url"] = f"{self.base_url}/pay/{obj['id']}"

    def _save(self) -> None:
        """Write the state (under the lock) to state_path, atomically: a crash leaves the old file or the new."""
        if self.state_path is None:
            return
        state = {
            "port": self.port,
            "objects": self.objects,
            "payment_intent_data": self._payment_intent_data,
            "item_names": self._item_names,
            "idempotent": self._idempotent,
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_path.with_name(self.state_path.name + ".partial")
        partial.write_text(json.dumps(state))
        os.replace(partial, self.state_path)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self._asgi,
            host="127.0.0.1",
            port=self.port,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,  # leaves logging handlers alone
            proxy_headers=False,
            timeout_graceful_shutdown=1,
        )

    def start(self) -> None:
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, name="fake-stripe", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the fake Stripe did not start on {self.base_url}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def serve_forever(self) -> None:
        uvicorn.Server(self._config()).run()

    def __enter__(self) -> FakeStripe:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test knobs ------------------------------------------------------------------------------------------

    def fail_next(self, path_prefix: str, *, status: int = 500, times: int = 1) -> None:
        """The next `times` API requests under `path_prefix` answer an api_error with `status` and do nothing."""
        with self._lock:
            self._failures.append(_Trigger(path_prefix, times, status))

    def slow_next(self, path_prefix: str, *, seconds: float, times: int = 1) -> None:
        """The next `times` API requests under `path_prefix` do their work (and store the idempotent result) at
        once but answer only after `seconds`, or never if the client gives up first."""
        with self._lock:
            self._delays.append(_Trigger(path_prefix, times, seconds))

    def decline_next_off_session(self) -> None:
        with self._lock:
            self._decline_next = True

    def created(self, object_type: str) -> list[dict[str, Any]]:
        """Copies of every object of `object_type` ("checkout.session", "payment_intent", ...) in creation order."""
        with self._lock:
            return [copy.deepcopy(obj) for obj in self.objects.values() if obj["object"] == object_type]

    # -- events and webhooks ---------------------------------------------------------------------------------

    def event(self, type: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": _new_id("evt"),
            "object": "event",
            "type": type,
            "created": int(time.time()),
            "api_version": API_VERSION,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": copy.deepcopy(obj)},
        }

    def send_event(self, event: dict[str, Any]) -> int:
        """POST `event`, signed now, to webhook_url; the status, or 0 when it could not be delivered."""
        if self.webhook_url is None:
            raise RuntimeError("set FakeStripe.webhook_url before sending events")
        payload = json.dumps(event)
        headers = {"Stripe-Signature": sign_payload(payload, self.webhook_secret, int(time.time())), "Content-Type": "application/json"}
        try:
            status: int | str = httpx.post(self.webhook_url, content=payload, headers=headers, timeout=10).status_code
        except httpx.HTTPError as error:
            status = f"{type(error).__name__}: {error}"
        with self._lock:
            self.webhook_deliveries.append((event["id"], status))
        return status if isinstance(status, int) else 0

    def _emit(self, type: str, obj: dict[str, Any]) -> None:
        event = self.event(type, obj)
        self.events.append(event)
        self._pending_events.append(event)

    def _deliver_pending(self) -> None:
        """Sends the events emitted under the lock, outside it: the receiver may call the fake back."""
        with self._lock:
            events, self._pending_events = self._pending_events, []
        if self.webhook_url is not None:
            for event in events:
                self.send_event(event)

    # -- what the pay page does --------------------------------------------------------------------------------

    def complete_checkout(self, session_id: str) -> dict[str, Any]:
        """Pays an open session: a PaymentIntent, a Charge, a saved PaymentMethod when setup_future_usage was
        asked for; sends checkout.session.completed; returns the session. KeyError/ValueError if not payable.
        The webhook goes out from the calling thread: from an async test whose own loop serves the receiver,
        call it through `asyncio.to_thread`."""
        with self._lock:
            session = self.objects.get(session_id)
            if session is None or session["object"] != "checkout.session":
                raise KeyError(session_id)
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            intent_data = self._payment_intent_data.get(session_id, {})
            setup_future_usage = intent_data.get("setup_future_usage")
            payment_method = None
            if setup_future_usage:
                if session["customer"] is None:  # Checkout makes a customer to save the card on
                    session["customer"] = self._create_customer({})["id"]
                payment_method = self._store(
                    "pm",
                    {
                        "object": "payment_method",
                        "type": "card",
                        "customer": session["customer"],
                        "metadata": {},
                        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": time.gmtime().tm_year + 3},
                    },
                )["id"]
            intent = self._confirmed_intent(
                amount=session["amount_total"],
                currency=session["currency"],
                customer=session["customer"],
                payment_method=payment_method,
                metadata=intent_data.get("metadata", {}),
                setup_future_usage=setup_future_usage,
            )
            session.update(status="complete", payment_status="paid", payment_intent=intent["id"])
            self._emit("checkout.session.completed", session)
            self._save()
            result = copy.deepcopy(session)
        self._deliver_pending()
        return result

    # -- handlers (called with the lock held; raise StripeError to answer an error) ----------------------------

    def _store(self, prefix: str, fields: dict[str, Any]) -> dict[str, Any]:
        obj = {"id": _new_id(prefix), **fields, "created": int(time.time()), "livemode": False}
        self.objects[obj["id"]] = obj
        return obj

    def _get(self, object_type: str, id: str, *, param: str = "id", status: int = 404) -> dict[str, Any]:
        """The object, or resource_missing: 404 for an id in the URL, 400 for one named by a parameter."""
        obj = self.objects.get(id)
        if obj is None or obj["object"] != object_type:
            raise StripeError(status, "invalid_request_error", f"No such {object_type}: '{id}'", code="resource_missing", param=param)
        return obj

    def _ref(self, object_type: str, id: str | None, param: str) -> str | None:
        return None if id is None else self._get(object_type, id, param=param, status=400)["id"]

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._store(
            "cus",
            {
                "object": "customer",
                "email": params.get("email"),
                "name": params.get("name"),
                "metadata": params.get("metadata", {}),
            },
        )

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("mode") != "payment":
            raise _invalid("The fake supports only mode=payment.", param="mode")
        if not params.get("success_url"):
            raise _invalid("Missing required param: success_url.", param="success_url", code="parameter_missing")
        line_items = params.get("line_items")
        if not isinstance(line_items, list) or not line_items:
            raise _invalid("Missing required param: line_items.", param="line_items", code="parameter_missing")
        amount_total, currencies = 0, set()
        for index, item in enumerate(line_items):
            price = item.get("price_data") or {}
            if not price.get("currency") or not (price.get("product_data") or {}).get("name"):
                raise _invalid("price_data needs currency and product_data[name].", param=f"line_items[{index}][price_data]")
            amount_total += _int(price, "unit_amount") * _int(item, "quantity", default=1)
            currencies.add(price["currency"].lower())
        if len(currencies) > 1:
            raise _invalid("All line items must use the same currency.", param="line_items")
        customer = self._ref("customer", params.get("customer"), "customer")
        created = int(time.time())
        session = self._store(
            "cs_test",
            {
                "object": "checkout.session",
                "mode": "payment",
                "status": "open",
                "payment_status": "unpaid",
                "amount_subtotal": amount_total,
                "amount_total": amount_total,
                "currency": currencies.pop(),
                "metadata": params.get("metadata", {}),
                "client_reference_id": params.get("client_reference_id"),
                "customer": customer,
                "payment_intent": None,
                "success_url": params["success_url"],
                "cancel_url": params.get("cancel_url"),
                "expires_at": _int(params, "expires_at", default=created + 24 * 3600),
            },
        )
        session["url"] = f"{self.base_url}/pay/{session['id']}"
        self._payment_intent_data[session["id"]] = params.get("payment_intent_data", {})
        self._item_names[session["id"]] = [item["price_data"]["product_data"]["name"] for item in line_items]
        return session

    def _expire_session(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        session = self._get("checkout.session", id)
        if session["status"] != "open":
            raise _invalid('Only Checkout Sessions with a status in ["open"] can be expired.')
        session["status"] = "expired"
        self._emit("checkout.session.expired", session)
        return session

    def _confirmed_intent(
        self,
        *,
        amount: int,
        currency: str,
        customer: str | None,
        payment_method: str | None,
        metadata: dict[str, Any],
        setup_future_usage: str | None = None,
        declined: bool = False,
    ) -> dict[str, Any]:
        """A confirmed PaymentIntent: succeeded with its Charge, or declined and back to requires_payment_method."""
        intent = self._store(
            "pi",
            {
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0 if declined else amount,
                "currency": currency,
                "customer": customer,
                "payment_method": None if declined else payment_method,
                "metadata": metadata,
                "status": "requires_payment_method" if declined else "succeeded",
                "setup_future_usage": setup_future_usage,
                "last_payment_error": {**DECLINE, "payment_method": copy.deepcopy(self.objects.get(payment_method or ""))}
                if declined
                else None,
                "latest_charge": None,
            },
        )
        if not declined:
            intent["latest_charge"] = self._store(
                "ch",
                {
                    "object": "charge",
                    "amount": amount,
                    "amount_captured": amount,
                    "amount_refunded": 0,
                    "refunded": False,
                    "paid": True,
                    "captured": True,
                    "status": "succeeded",
                    "currency": currency,
                    "customer": customer,
                    "payment_intent": intent["id"],
                    "payment_method": payment_method,
                    "metadata": metadata,
                },
            )["id"]
        return intent

    def _create_payment_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        amount, currency = _int(params, "amount"), params.get("currency")
        if not currency:
            raise _invalid("Missing required param: currency.", param="currency", code="parameter_missing")
        if params.get("confirm") != "true" or params.get("off_session") != "true":
            raise _invalid("The fake supports only confirm=true with off_session=true.", param="confirm")
        customer = self._ref("customer", params.get("customer"), "customer")
        payment_method = self._ref("payment_method", params.get("payment_method"), "payment_method")
        if payment_method is None:
            raise _invalid("Missing required param: payment_method.", param="payment_method", code="parameter_missing")
        if self.objects[payment_method]["customer"] != customer:
            raise _invalid(f"The provided PaymentMethod {payment_method} does not belong to customer {customer}.", param="payment_method")
        declined, self._decline_next = self._decline_next, False
        intent = self._confirmed_intent(
            amount=amount,
            currency=currency.lower(),
            customer=customer,
            payment_method=payment_method,
            metadata=params.get("metadata", {}),
            declined=declined,
        )
        if declined:  # Stripe puts the PaymentIntent in the error
            raise StripeError(
                402,
                "card_error",
                DECLINE["message"],
                code="card_declined",
                decline_code="generic_decline",
                payment_intent=copy.deepcopy(intent),
            )
        return intent

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        if "payment_intent" not in params:
            raise _invalid("Missing required param: payment_intent.", param="payment_intent", code="parameter_missing")
        intent = self._get("payment_intent", params["payment_intent"], param="payment_intent", status=400)
        if intent["status"] != "succeeded":
            raise _invalid("This PaymentIntent does not have a successful charge to refund.", code="payment_intent_unexpected_state")
        reason = params.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise _invalid(f"Invalid reason: must be one of {', '.join(sorted(REFUND_REASONS))}", param="reason")
        charge = self.objects[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        if left == 0:
            raise _invalid(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        amount = _int(params, "amount", default=left)
        if amount <= 0:
            raise _invalid("Refund amount must be positive.", param="amount", code="parameter_invalid_integer")
        if amount > left:
            raise _invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})", param="amount", code="amount_too_large"
            )
        refund = self._store(
            "re",
            {
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": intent["id"],
                "status": "succeeded",
                "reason": reason,
                "metadata": params.get("metadata", {}),
            },
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("charge.refunded", charge)
        return refund

    # -- HTTP ----------------------------------------------------------------------------------------------------

    @staticmethod
    def _take(triggers: list[_Trigger], path: str) -> float | None:
        for trigger in triggers:
            if path.startswith(trigger.path_prefix):
                trigger.times -= 1
                if trigger.times <= 0:
                    triggers.remove(trigger)
                return trigger.value
        return None

    def _answer_api(
        self, method: str, path: str, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, str, dict[str, str], float]:
        """(status, JSON body, extra headers, seconds to wait before answering) for one /v1 request."""
        with self._lock:
            if (failure := self._take(self._failures, path)) is not None:
                error = StripeError(int(failure), "api_error", "The fake was told to fail this request.")
                return error.status, json.dumps(error.body), {}, 0.0
            delay = self._take(self._delays, path) or 0.0
            key = headers.get("idempotency-key") if method == "POST" else None
            fingerprint = json.dumps([method, path, params], sort_keys=True)
            if key is not None and key in self._idempotent:
                first_fingerprint, status, body = self._idempotent[key]
                if first_fingerprint != fingerprint:
                    error = StripeError(
                        400,
                        "idempotency_error",
                        (
                            "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                            f"Try using a key other than '{key}' if you meant to execute a different request."
                        ),
                    )
                    return error.status, json.dumps(error.body), {}, delay
                return status, body, {"idempotent-replayed": "true"}, delay
            try:
                status, body = 200, self._route(method, path, headers, params)
            except StripeError as error:
                status, body = error.status, json.dumps(error.body)
            if key is not None:
                self._idempotent[key] = (fingerprint, status, body)
            if method == "POST":
                self._save()
        self._deliver_pending()
        return status, body, {}, delay

    def _route(self, method: str, path: str, headers: dict[str, str], params: dict[str, Any]) -> str:
        if not headers.get("authorization", "").startswith(("Bearer ", "Basic ")):  # curl -u sk_test_x: sends Basic
            raise StripeError(401, "invalid_request_error", "You did not provide an API key.")
        for route_method, pattern, handler in self._routes:
            if route_method == method and (match := pattern.fullmatch(path)):
                obj = handler(params, *match.groups())
                return json.dumps(obj)
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _pay_page(self, session_id: str) -> tuple[int, str]:
        with self._lock:
            session = self.objects.get(session_id)
            if session is None or session["object"] != "checkout.session":
                return 404, "<h1>Test checkout</h1><p>No such checkout session.</p>"
            if session["status"] != "open":
                state = "has expired" if session["status"] == "expired" else "is already paid"
                return 200, f"<h1>Test checkout</h1><p>This checkout session {state}.</p>"
            items = "".join(f"<li>{html.escape(name)}</li>" for name in self._item_names[session_id])
            total = f"${session['amount_total'] / 100:,.2f} {session['currency'].upper()}"
            cancel = f'<p><a href="{html.escape(session["cancel_url"])}">Back</a></p>' if session["cancel_url"] else ""
            return 200, (
                f"<h1>Test checkout</h1><ul>{items}</ul><p>Total: <strong>{total}</strong></p>"
                f'<form method="post" action="/pay/{html.escape(session_id)}"><button type="submit">Pay</button></form>{cancel}'
            )

    def _pay(self, session_id: str) -> tuple[int, str, dict[str, str]]:
        try:
            session = self.complete_checkout(session_id)
        except (KeyError, ValueError):
            status, page = self._pay_page(session_id)
            return (409 if status == 200 else status), page, {}
        return 303, "", {"location": session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)}

    async def _asgi(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw_body = b"".join(chunks).decode()
        method, path = scope["method"], scope["path"]
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        params = parse_form(raw_body if method == "POST" else scope["query_string"].decode())
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, copy.deepcopy(params), raw_body))
        extra: dict[str, str]
        delay, content_type, extra = 0.0, "application/json", {}
        if (pay := re.fullmatch(r"/pay/([^/]+)", path)) and method == "GET":
            (status, body), content_type = self._pay_page(pay.group(1)), "text/html; charset=utf-8"
        elif pay and method == "POST":  # in a thread: the webhook receiver may call this server back
            status, body, extra = await asyncio.to_thread(self._pay, pay.group(1))
            content_type = "text/html; charset=utf-8"
        else:
            status, body, extra, delay = await asyncio.to_thread(self._answer_api, method, path, headers, params)
        if delay and await self._client_left_within(receive, delay):
            return  # it timed out and hung up; its retry gets the stored result
        response_headers = [(b"content-type", content_type.encode()), (b"request-id", _new_id("req").encode())]
        response_headers += [(name.encode(), value.encode()) for name, value in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body.encode()})

    @staticmethod
    async def _client_left_within(receive: Callable[..., Any], seconds: float) -> bool:
        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            await asyncio.wait_for(disconnected(), timeout=seconds)
        except TimeoutError:
            return False
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description="A local fake of Stripe's HTTP API (telehealth/devtools/stripe_stand_in.py).")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--webhook-secret", default="whsec_test_fake")
    args = parser.parse_args()
    fake = FakeStripe(args.port, webhook_url=args.webhook_url, webhook_secret=args.webhook_secret)
    print(f"fake Stripe on {fake.base_url} (webhooks to {fake.webhook_url or 'nowhere'})", flush=True)
    fake.serve_forever()


if __name__ == "__main__":
    main()
