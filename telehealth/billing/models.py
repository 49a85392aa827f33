"""Payments, refunds, the ledger, Stripe's events and customers, and the clinic's fee and refund policy.

Amounts are integer cents. Stripe ids are stored to match its webhooks back to our rows; nothing about a
patient's health is ever sent to Stripe (see `gateway.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Uuid, text
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key

LIVE_PAYMENT_SQL = "status IN ('open', 'paid')"


def _patient_fk() -> Any:  # a Field(...), which SQLModel types as Any
    return Field(sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="RESTRICT"), nullable=False, index=True))


class BillingPolicy(SQLModel, table=True):
    """The clinic's fees and refund rules: one row, changed by coordinators (audited)."""

    __tablename__ = "billing_policy"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(
            "consult_fee_cents > 0 AND program_fee_cents > 0 AND integration_fee_cents > 0 AND late_cancel_fee_cents >= 0 "
            "AND no_show_fee_cents >= 0 AND free_cancel_hours >= 0 AND included_integration_sessions >= 0",
            name="amounts_valid",
        ),
        CheckConstraint(
            "program_refund_percent_after_first_shipment BETWEEN 0 AND 100 "
            "AND program_refund_percent_after_second_shipment BETWEEN 0 AND 100",
            name="percents_valid",
        ),
    )

    id: int = Field(default=1, primary_key=True)
    consult_fee_cents: int
    program_fee_cents: int
    integration_fee_cents: int
    late_cancel_fee_cents: int
    no_show_fee_cents: int
    free_cancel_hours: int = 24
    program_refund_percent_after_first_shipment: int = 50
    program_refund_percent_after_second_shipment: int = 0
    included_integration_sessions: int = 1  # per paid program
    updated_at: datetime = utc_timestamp()
    updated_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="SET NULL")))


class Payment(SQLModel, table=True):
    """One thing a patient pays for, from the Checkout Session (or off-session charge) to its refunds."""

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint("purpose IN ('consult', 'integration', 'program', 'late_cancel_fee', 'no_show_fee')", name="purpose_known"),
        CheckConstraint("status IN ('open', 'paid', 'refunded', 'expired', 'failed', 'cancelled')", name="status_known"),
        CheckConstraint("amount_cents > 0 AND refunded_cents >= 0 AND refunded_cents <= amount_cents", name="amounts_valid"),
        # A double-click on "pay" finds the live payment instead of making a second one.
        Index("uq_payment_live_per_appointment", "appointment_id", "purpose", unique=True, postgresql_where=text(LIVE_PAYMENT_SQL)),
        Index("uq_payment_live_per_plan", "plan_id", "purpose", unique=True, postgresql_where=text(LIVE_PAYMENT_SQL)),
        Index("ix_payment_disputed", "disputed_at", postgresql_where=text("disputed_at IS NOT NULL")),
        Index("ix_payment_paid_at", "paid_at"),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _patient_fk()
    purpose: str = Field(max_length=20)
    status: str = Field(max_length=20)
    amount_cents: int
    refunded_cents: int = 0
    currency: str = Field(default="usd", max_length=3)
    appointment_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, ForeignKey("appointment.id", ondelete="RESTRICT")))
    plan_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("troche_plan.id", ondelete="RESTRICT"))
    )  # the program fee
    save_payment_method: bool = False  # the patient agreed at checkout to fees being charged to this card
    stripe_checkout_session_id: str | None = Field(default=None, max_length=255, unique=True)
    stripe_payment_intent_id: str | None = Field(default=None, max_length=255, unique=True)
    checkout_url: str | None = None
    checkout_attempts: int = 0  # each new Checkout Session for this payment gets its own idempotency key
    checkout_expires_at: datetime | None = utc_timestamp(nullable=True)
    created_at: datetime = utc_timestamp()
    paid_at: datetime | None = utc_timestamp(nullable=True)
    disputed_at: datetime | None = utc_timestamp(nullable=True)
    failure_code: str | None = Field(default=None, max_length=100)


class Refund(SQLModel, table=True):
    """Money going back: by policy (one per payment and reason) or by a coordinator (with a reason)."""

    __tablename__ = "refund"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        CheckConstraint("reason <> 'manual' OR note IS NOT NULL", name="manual_has_note"),
        Index("uq_refund_policy_once", "payment_id", "reason", unique=True, postgresql_where=text("reason NOT IN ('manual', 'outside')")),
    )

    id: uuid.UUID = uuid_primary_key()
    payment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("payment.id", ondelete="RESTRICT"), nullable=False, index=True))
    amount_cents: int
    reason: str = Field(max_length=40)  # e.g. patient_cancelled_early, clinician_cancelled, late_cancel, ineligible, manual
    note: str | None = Field(default=None, max_length=500)  # the coordinator's reason; stays here, never sent to Stripe
    status: str = Field(max_length=20)
    stripe_refund_id: str | None = Field(default=None, max_length=255, unique=True)
    requested_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="SET NULL")))
    created_at: datetime = utc_timestamp()
    completed_at: datetime | None = utc_timestamp(nullable=True)


class LedgerEntry(SQLModel, table=True):
    """What the patient's statement shows: charges (positive), refunds (negative) and disputes, each once."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint("kind IN ('charge', 'refund', 'dispute')", name="kind_known"),
        Index("uq_ledger_charge_once", "payment_id", unique=True, postgresql_where=text("kind = 'charge'")),
        Index("uq_ledger_dispute_once", "payment_id", unique=True, postgresql_where=text("kind = 'dispute'")),
        Index("uq_ledger_refund_once", "refund_id", unique=True, postgresql_where=text("kind = 'refund'")),
        Index("ix_ledger_entry_occurred_at", "occurred_at"),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _patient_fk()
    payment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("payment.id", ondelete="RESTRICT"), nullable=False))
    refund_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, ForeignKey("refund.id", ondelete="RESTRICT")))
    kind: str = Field(max_length=20)
    amount_cents: int
    label: str = Field(max_length=100)
    occurred_at: datetime = utc_timestamp()


class StripeEvent(SQLModel, table=True):
    """Every webhook event we acted on, stored with its effects: a repeat finds its id and does nothing."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    received_at: datetime = utc_timestamp()


class StripeCustomer(SQLModel, table=True):
    """A patient's Stripe customer (made with no name or email) and the card they agreed to keep on file."""

    __tablename__ = "stripe_customer"

    patient_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True))
    stripe_customer_id: str = Field(max_length=255, unique=True)
    payment_method_id: str | None = Field(default=None, max_length=255)
    payment_method_saved_at: datetime | None = utc_timestamp(nullable=True)
