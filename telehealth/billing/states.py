"""Payment and refund statuses and the transitions allowed between them.

Payment: open --complete--> paid --refund_fully--> refunded (--refund_failed--> paid)
         open --lapse--> expired        (Checkout expired, or the hold it paid for lapsed first)
         open --fail--> failed --complete--> paid   (a delayed method can still succeed)
         expired | cancelled --complete_late--> paid   (then refunded in full: the time was released)
         open --cancel--> cancelled     (the patient let go of the held time before paying)
Refund:  pending --succeed--> succeeded; pending --fail--> failed
"""

from enum import StrEnum

from telehealth.lib.states import TransitionTable


class PaymentPurpose(StrEnum):
    CONSULT = "consult"
    INTEGRATION = "integration"
    PROGRAM = "program"
    LATE_CANCEL_FEE = "late_cancel_fee"
    NO_SHOW_FEE = "no_show_fee"


class PaymentStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# The only words Stripe ever sees for what was bought: generic, never a drug, a dose or a diagnosis.
STRIPE_PRODUCT_NAMES = {
    PaymentPurpose.CONSULT: "Consultation",
    PaymentPurpose.INTEGRATION: "Follow-up session",
    PaymentPurpose.PROGRAM: "Program services",
    PaymentPurpose.LATE_CANCEL_FEE: "Late cancellation fee",
    PaymentPurpose.NO_SHOW_FEE: "Missed appointment fee",
}

PAYMENT_TRANSITIONS = TransitionTable(
    "payment",
    {
        (PaymentStatus.OPEN, PaymentStatus.PAID): "complete",
        (PaymentStatus.FAILED, PaymentStatus.PAID): "complete",
        # Stripe completed a session we had already let go (paid in one tab, released in another): the money
        # arrived, so it is recorded, and the refund follows at once.
        (PaymentStatus.EXPIRED, PaymentStatus.PAID): "complete_late",
        (PaymentStatus.CANCELLED, PaymentStatus.PAID): "complete_late",
        (PaymentStatus.OPEN, PaymentStatus.EXPIRED): "lapse",
        (PaymentStatus.OPEN, PaymentStatus.FAILED): "fail",
        (PaymentStatus.OPEN, PaymentStatus.CANCELLED): "cancel",
        (PaymentStatus.PAID, PaymentStatus.REFUNDED): "refund_fully",
        (PaymentStatus.REFUNDED, PaymentStatus.PAID): "refund_failed",
    },
)

REFUND_TRANSITIONS = TransitionTable(
    "refund",
    {
        (RefundStatus.PENDING, RefundStatus.SUCCEEDED): "succeed",
        (RefundStatus.PENDING, RefundStatus.FAILED): "fail",
    },
)
