"""The refund policy as pure functions: the 24-hour boundary, who cancels, the program's shipment tiers, and
the sentences a patient reads (in dollars)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telehealth.billing.models import BillingPolicy
from telehealth.billing.policy import appointment_cancellation, before_payment, dollars, fee_for, ineligible, program_cancellation
from telehealth.billing.states import PaymentPurpose

STARTS = datetime(2027, 1, 12, 15, 0, tzinfo=UTC)


def clinic_policy(**changes) -> BillingPolicy:
    values = {
        "consult_fee_cents": 15000,
        "program_fee_cents": 115800,
        "integration_fee_cents": 7500,
        "late_cancel_fee_cents": 5000,
        "no_show_fee_cents": 7500,
        "free_cancel_hours": 24,
        "program_refund_percent_after_first_shipment": 50,
        "program_refund_percent_after_second_shipment": 0,
        "included_integration_sessions": 1,
    }
    return BillingPolicy(**(values | changes))


@pytest.mark.parametrize(
    ("before_start", "refund", "reason", "kept"),
    [
        (timedelta(hours=24, minutes=1), 15000, "patient_cancelled_early", 0),
        (timedelta(hours=24), 15000, "patient_cancelled_early", 0),
        (timedelta(hours=23, minutes=59, seconds=59), 10000, "late_cancel", 5000),
        (timedelta(minutes=5), 10000, "late_cancel", 5000),
        (timedelta(minutes=-30), 10000, "late_cancel", 5000),  # after the start: still only the fee is kept
    ],
)
def test_a_patient_cancelling_gets_everything_back_until_24_hours_before_then_less_the_late_fee(before_start, refund, reason, kept):
    decision = appointment_cancellation(
        15000, by_patient=True, starts_at=STARTS, cancelled_at=STARTS - before_start, policy=clinic_policy()
    )
    assert (decision.amount_cents, decision.reason, decision.kept_cents) == (refund, reason, kept)
    assert f"{dollars(refund)}" in decision.sentence
    if kept:
        assert "$50.00" in decision.sentence and "$100.00 back" in decision.sentence


def test_the_clinic_cancelling_refunds_everything_even_minutes_before():
    decision = appointment_cancellation(
        15000, by_patient=False, starts_at=STARTS, cancelled_at=STARTS - timedelta(minutes=1), policy=clinic_policy()
    )
    assert (decision.amount_cents, decision.reason, decision.kept_cents) == (15000, "clinician_cancelled", 0)
    assert "$150.00" in decision.sentence


def test_the_late_fee_never_exceeds_what_is_left_to_refund():
    decision = appointment_cancellation(
        3000, by_patient=True, starts_at=STARTS, cancelled_at=STARTS - timedelta(hours=1), policy=clinic_policy()
    )
    assert (decision.amount_cents, decision.kept_cents) == (0, 3000)


def test_the_free_window_follows_the_policy():
    policy = clinic_policy(free_cancel_hours=48, late_cancel_fee_cents=2500)
    early = appointment_cancellation(15000, by_patient=True, starts_at=STARTS, cancelled_at=STARTS - timedelta(hours=48), policy=policy)
    late = appointment_cancellation(
        15000, by_patient=True, starts_at=STARTS, cancelled_at=STARTS - timedelta(hours=47, minutes=59), policy=policy
    )
    assert (early.amount_cents, late.amount_cents, late.kept_cents) == (15000, 12500, 2500)
    assert "48 hours" in late.sentence


def test_an_ineligible_patient_gets_the_consult_back():
    decision = ineligible(15000)
    assert (decision.amount_cents, decision.reason, decision.kept_cents) == (15000, "ineligible", 0)


@pytest.mark.parametrize(
    ("shipments", "refund", "reason"),
    [
        (0, 115800, "program_before_shipment"),
        (1, 57900, "program_after_first_shipment"),
        (2, 0, "program_after_second_shipment"),
        (3, 0, "program_after_second_shipment"),
    ],
)
def test_the_program_fee_is_refunded_by_shipments_sent(shipments, refund, reason):
    decision = program_cancellation(115800, shipments_sent=shipments, policy=clinic_policy())
    assert (decision.amount_cents, decision.reason, decision.kept_cents) == (refund, reason, 115800 - refund)
    assert dollars(refund) in decision.sentence


def test_program_tiers_follow_the_policy_and_round_down_to_the_cent():
    policy = clinic_policy(program_refund_percent_after_first_shipment=33, program_refund_percent_after_second_shipment=10)
    assert program_cancellation(99999, shipments_sent=1, policy=policy).amount_cents == 32999
    assert program_cancellation(99999, shipments_sent=2, policy=policy).amount_cents == 9999
    assert program_cancellation(99999, shipments_sent=5, policy=policy).kept_cents == 90000


def test_dollars_are_written_with_cents_and_thousands():
    assert [dollars(c) for c in (0, 5, 50, 15000, 115800, 123456789)] == [
        "$0.00",
        "$0.05",
        "$0.50",
        "$150.00",
        "$1,158.00",
        "$1,234,567.89",
    ]


def test_fees_come_from_the_policy():
    policy = clinic_policy(consult_fee_cents=20000)
    assert {p: fee_for(p, policy) for p in PaymentPurpose} == {
        PaymentPurpose.CONSULT: 20000,
        PaymentPurpose.INTEGRATION: 7500,
        PaymentPurpose.PROGRAM: 115800,
        PaymentPurpose.LATE_CANCEL_FEE: 5000,
        PaymentPurpose.NO_SHOW_FEE: 7500,
    }


def test_what_a_patient_reads_before_paying_is_in_dollars():
    consult = " ".join(before_payment(PaymentPurpose.CONSULT, clinic_policy()))
    assert "$150.00" in consult and "$50.00" in consult and "24 hours" in consult
    assert "if it leads to a treatment plan, its $150.00 is not refunded" in consult  # changes.refuse_change_after_visit
    integration = " ".join(before_payment(PaymentPurpose.INTEGRATION, clinic_policy(late_cancel_fee_cents=10000)))
    assert "$75.00" in integration and "fee of $75.00 is kept" in integration  # never more than the session costs
    assert "treatment plan" not in integration
    program = " ".join(before_payment(PaymentPurpose.PROGRAM, clinic_policy()))
    assert "$1,158.00" in program and "50% back ($579.00)" in program and "0% back ($0.00)" in program
    assert before_payment(PaymentPurpose.NO_SHOW_FEE, clinic_policy()) == ["This fee is $75.00."]
