"""The one place that talks to Stripe, through the official client (async, over httpx).

Privacy by construction: every request is built here from opaque ids, integer cents and the generic product
names of `states.STRIPE_PRODUCT_NAMES`; no name, email, date of birth, diagnosis, drug or dose can reach
Stripe because none is ever passed in. Every create call carries an idempotency key derived from our row
id and the action, so a retry after a timeout (the client retries by itself) never charges twice.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe

from telehealth.billing.states import STRIPE_PRODUCT_NAMES, PaymentPurpose
from telehealth.lib.errors import RuleRefused, ServiceUnavailable
from telehealth.settings import Settings


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    expires_at: datetime


class StripeGateway:
    def __init__(self, settings: Settings) -> None:
        with warnings.catch_warnings():  # stripe's httpx client trips one httpx DeprecationWarning on creation
            warnings.simplefilter("ignore", DeprecationWarning)
            self._http = stripe.HTTPXClient(timeout=settings.stripe_timeout_seconds)
        self._client = stripe.StripeClient(
            settings.stripe_api_key,
            http_client=self._http,
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
            max_network_retries=settings.stripe_max_network_retries,
        )

    async def close(self) -> None:
        await self._http.close_async()

    async def create_customer(self, *, patient_ref: str) -> str:
        """A customer with no name, email or address: only our opaque patient id."""
        customer = await self._call(
            self._client.v1.customers.create_async, {"metadata": {"patient_ref": patient_ref}}, key=f"customer:{patient_ref}"
        )
        return str(customer["id"])

    async def create_checkout_session(
        self,
        *,
        payment_id: str,
        purpose: PaymentPurpose,
        amount_cents: int,
        customer_id: str,
        attempt: int,
        expires_at: datetime,
        success_url: str,
        cancel_url: str,
        save_payment_method: bool,
    ) -> CheckoutSession:
        params: dict[str, Any] = {
            "mode": "payment",
            "customer": customer_id,
            "client_reference_id": payment_id,
            "metadata": {"payment_id": payment_id},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {"currency": "usd", "unit_amount": amount_cents, "product_data": {"name": STRIPE_PRODUCT_NAMES[purpose]}},
                }
            ],
            "payment_intent_data": {"metadata": {"payment_id": payment_id}},
            "expires_at": int(expires_at.timestamp()),
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if save_payment_method:
            params["payment_intent_data"]["setup_future_usage"] = "off_session"
        session = await self._call(self._client.v1.checkout.sessions.create_async, params, key=f"checkout:{payment_id}:{attempt}")
        return CheckoutSession(id=str(session["id"]), url=str(session["url"]), expires_at=expires_at)

    async def expire_checkout_session(self, session_id: str) -> None:
        try:
            await self._call(self._client.v1.checkout.sessions.expire_async, session_id, key=f"expire:{session_id}")
        except RuleRefused:
            pass  # already complete or expired: nothing to release

    async def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(payment_intent_id)
        except stripe.InvalidRequestError:
            return {}  # not ours (or not there): the event is ignored rather than retried forever
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
            raise ServiceUnavailable("payments.unavailable", "Our payment processor did not answer; we will try again.") from error
        return intent.to_dict()

    async def charge_saved_method(self, *, payment_id: str, amount_cents: int, customer_id: str, payment_method_id: str) -> dict[str, Any]:
        """An off-session charge of a card the patient agreed to keep on file (fees)."""
        params = {
            "amount": amount_cents,
            "currency": "usd",
            "customer": customer_id,
            "payment_method": payment_method_id,
            "confirm": True,
            "off_session": True,
            "metadata": {"payment_id": payment_id},
        }
        intent = await self._call(self._client.v1.payment_intents.create_async, params, key=f"fee:{payment_id}")
        return intent.to_dict()

    async def create_refund(self, *, refund_id: str, payment_intent_id: str, amount_cents: int) -> dict[str, Any]:
        params = {"payment_intent": payment_intent_id, "amount": amount_cents, "metadata": {"refund_id": refund_id}}
        refund = await self._call(self._client.v1.refunds.create_async, params, key=f"refund:{refund_id}")
        return refund.to_dict()

    async def _call(self, method: Any, *args: Any, key: str) -> Any:
        """Stripe's errors in our words: a decline or a refused request is a 422, an outage a 503."""
        try:
            return await method(*args, options={"idempotency_key": key})
        except stripe.CardError as error:
            raise RuleRefused(
                "payments.card_declined", "The card was declined.", extra={"decline_code": error.code or "declined"}
            ) from error
        except stripe.InvalidRequestError as error:
            raise RuleRefused(
                "payments.refused", "Our payment processor refused the request.", extra={"stripe_code": error.code or ""}
            ) from error
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
            raise ServiceUnavailable(
                "payments.unavailable", "We could not reach our payment processor. Nothing was charged; please try again in a minute."
            ) from error
