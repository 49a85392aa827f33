"""Request and response bodies of the billing API (integer cents everywhere)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from telehealth.lib.schema import RequestBody, ResponseBody

Cents = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]


class CheckoutRequest(RequestBody):
    save_payment_method: bool = False


class CheckoutBody(ResponseBody):
    payment_id: uuid.UUID
    amount_cents: int
    checkout_url: str | None
    expires_at: datetime | None
    policy: list[str]  # what applies, in plain words and dollars


class PolicyBody(ResponseBody):
    consult_fee_cents: int
    program_fee_cents: int
    integration_fee_cents: int
    late_cancel_fee_cents: int
    no_show_fee_cents: int
    free_cancel_hours: int
    program_refund_percent_after_first_shipment: int
    program_refund_percent_after_second_shipment: int
    included_integration_sessions: int
    appointments: list[str]
    program: list[str]


class PolicyUpdate(RequestBody):
    consult_fee_cents: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    program_fee_cents: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    integration_fee_cents: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    late_cancel_fee_cents: Cents | None = None
    no_show_fee_cents: Cents | None = None
    free_cancel_hours: Annotated[int, msgspec.Meta(ge=0, le=720)] | None = None
    program_refund_percent_after_first_shipment: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    program_refund_percent_after_second_shipment: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    included_integration_sessions: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None


class PaymentBody(ResponseBody):
    id: uuid.UUID
    purpose: str
    status: str
    amount_cents: int
    refunded_cents: int
    created_at: datetime
    paid_at: datetime | None
    appointment_id: uuid.UUID | None
    disputed: bool


class LedgerLine(ResponseBody):
    kind: str
    amount_cents: int
    label: str
    occurred_at: datetime
    payment_id: uuid.UUID


class StatementBody(ResponseBody):
    payments: list[PaymentBody]
    ledger: list[LedgerLine]
    balance_due_cents: int


class ManualRefundRequest(RequestBody):
    amount_cents: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]


class RefundBody(ResponseBody):
    id: uuid.UUID
    payment_id: uuid.UUID
    amount_cents: int
    reason: str
    status: str


class DailyTotal(ResponseBody):
    day: str
    charged_cents: int
    refunded_cents: int
    disputed_cents: int
