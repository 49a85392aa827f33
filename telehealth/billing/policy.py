"""The refund policy as pure functions, and the plain-words sentences a patient reads before paying or
cancelling. Amounts are integer cents; the numbers come from the clinic's `BillingPolicy` row.

Defaults (DOMAIN.md research, the peers' published rules made readable):
- a consult (or paid session) cancelled by the patient 24 h or more ahead, by the clinician, or because the
  patient was found ineligible: full refund; cancelled by the patient inside 24 h: refund minus the
  late-cancellation fee;
- the program fee: full refund before the first shipment, 50% after the first batch ships, none after the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from telehealth.billing.models import BillingPolicy
from telehealth.billing.states import PaymentPurpose


def dollars(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


@dataclass(frozen=True)
class RefundDecision:
    amount_cents: int
    reason: str  # stored on the refund, e.g. "late_cancel"
    kept_cents: int  # what the clinic keeps (the late fee, or the program's used share)
    sentence: str  # what the patient reads


def appointment_cancellation(
    paid_cents: int, *, by_patient: bool, starts_at: datetime, cancelled_at: datetime, policy: BillingPolicy, late_fee_taken: bool = False
) -> RefundDecision:
    if not by_patient:
        return RefundDecision(
            paid_cents, "clinician_cancelled", 0, f"The clinic cancelled, so you get the full {dollars(paid_cents)} back."
        )
    if starts_at - cancelled_at >= timedelta(hours=policy.free_cancel_hours):
        return RefundDecision(
            paid_cents,
            "patient_cancelled_early",
            0,
            f"You are cancelling {policy.free_cancel_hours} hours or more ahead, so you get the full {dollars(paid_cents)} back.",
        )
    if late_fee_taken:
        return RefundDecision(
            paid_cents,
            "late_cancel_fee_already_charged",
            0,
            f"The late fee was already charged when you moved this appointment, so you get the full {dollars(paid_cents)} back.",
        )
    kept = min(paid_cents, policy.late_cancel_fee_cents)
    back = paid_cents - kept
    return RefundDecision(
        back,
        "late_cancel",
        kept,
        f"You are cancelling less than {policy.free_cancel_hours} hours before the start: the late-cancellation fee of "
        f"{dollars(kept)} is kept and you get {dollars(back)} back.",
    )


def ineligible(paid_cents: int) -> RefundDecision:
    return RefundDecision(
        paid_cents, "ineligible", 0, f"The program is not the right fit for you, so you get the full {dollars(paid_cents)} back."
    )


def program_cancellation(paid_cents: int, *, shipments_sent: int, policy: BillingPolicy) -> RefundDecision:
    if shipments_sent <= 0:
        return RefundDecision(
            paid_cents, "program_before_shipment", 0, f"Nothing has shipped yet, so you get the full {dollars(paid_cents)} back."
        )
    if shipments_sent == 1:
        percent, reason, when = (
            policy.program_refund_percent_after_first_shipment,
            "program_after_first_shipment",
            "the first shipment has left",
        )
    else:
        percent, reason, when = (
            policy.program_refund_percent_after_second_shipment,
            "program_after_second_shipment",
            "the second shipment has left",
        )
    back = paid_cents * percent // 100
    return RefundDecision(back, reason, paid_cents - back, f"Because {when}, you get {percent}% back: {dollars(back)}.")


def fee_for(purpose: PaymentPurpose, policy: BillingPolicy) -> int:
    return {
        PaymentPurpose.CONSULT: policy.consult_fee_cents,
        PaymentPurpose.INTEGRATION: policy.integration_fee_cents,
        PaymentPurpose.PROGRAM: policy.program_fee_cents,
        PaymentPurpose.LATE_CANCEL_FEE: policy.late_cancel_fee_cents,
        PaymentPurpose.NO_SHOW_FEE: policy.no_show_fee_cents,
    }[purpose]


def before_payment(purpose: PaymentPurpose, policy: BillingPolicy) -> list[str]:
    """What the patient reads next to the pay button, in dollars."""
    hours = policy.free_cancel_hours
    if purpose is PaymentPurpose.PROGRAM:
        return [
            f"The program fee is {dollars(policy.program_fee_cents)}.",
            "If you stop before your first shipment leaves the pharmacy, you get it all back.",
            f"After the first shipment: {policy.program_refund_percent_after_first_shipment}% back "
            f"({dollars(policy.program_fee_cents * policy.program_refund_percent_after_first_shipment // 100)}).",
            f"After the second shipment: {policy.program_refund_percent_after_second_shipment}% back "
            f"({dollars(policy.program_fee_cents * policy.program_refund_percent_after_second_shipment // 100)}).",
        ]
    if purpose in (PaymentPurpose.CONSULT, PaymentPurpose.INTEGRATION):
        amount = fee_for(purpose, policy)
        return [
            f"This appointment costs {dollars(amount)}.",
            f"Cancel or reschedule {hours} hours or more ahead: free, and a cancellation is refunded in full.",
            f"Cancel less than {hours} hours ahead: "
            f"the late-cancellation fee of {dollars(min(amount, policy.late_cancel_fee_cents))} is kept.",
            "If the clinic cancels, or the clinician finds the program is not right for you, you get everything back.",
            *(
                [
                    "Once the video visit has taken place it cannot be cancelled; "
                    f"if it leads to a treatment plan, its {dollars(amount)} is not refunded."
                ]
                if purpose is PaymentPurpose.CONSULT
                else []
            ),
        ]
    return [f"This fee is {dollars(fee_for(purpose, policy))}."]


@dataclass(frozen=True)
class BookingTerms:
    """What the booking page says before the patient picks a time: the price, and what cancelling costs."""

    price: str  # "$150.00", or why there is nothing to pay
    charged: bool
    cancel_rules: list[str]


def booking_terms(purpose: PaymentPurpose | None, policy: BillingPolicy, *, charged: bool) -> BookingTerms:
    """`purpose` is the appointment's payment purpose (None: never paid separately, like a reassessment);
    `charged` whether this booking is paid (billing.service.appointment_needs_payment decides)."""
    if charged and purpose is not None:
        amount = fee_for(purpose, policy)
        price, late_fee = dollars(amount), min(amount, policy.late_cancel_fee_cents)
        early, anytime = "full refund, and moving it is free", "Cancel any time before the start: full refund; moving it is free."
    else:
        price = "Included in your program" if purpose is PaymentPurpose.INTEGRATION else "Part of your plan: nothing to pay"
        late_fee, early, anytime = policy.late_cancel_fee_cents, "no charge", "Cancel or move it any time before the start: no charge."
    hours = policy.free_cancel_hours
    if late_fee == 0 or hours == 0:
        return BookingTerms(price, charged, [anytime])
    verb = "Cancel" if charged and purpose is not None else "Cancel or move it"
    return BookingTerms(
        price,
        charged,
        [
            f"{verb} {hours} hours or more before the start: {early}.",
            f"Later than that, cancelling or moving it costs the {dollars(late_fee)} late-cancellation fee.",
        ],
    )
