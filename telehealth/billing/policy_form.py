"""The coordinator's policy form: each field's words, its unit, and how its typed value becomes the
policy's integer (dollars to whole cents; hours, percentages and counts as whole numbers)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# field -> (label, unit); the unit says how the typed value is read
POLICY_FORM: dict[str, tuple[str, str]] = {
    "consult_fee_cents": ("Consultation fee", "dollars"),
    "program_fee_cents": ("Program fee", "dollars"),
    "integration_fee_cents": ("Integration session fee", "dollars"),
    "late_cancel_fee_cents": ("Late cancellation fee", "dollars"),
    "no_show_fee_cents": ("Missed appointment fee", "dollars"),
    "free_cancel_hours": ("Free changes until (hours before)", "hours"),
    "program_refund_percent_after_first_shipment": ("Program refund after the first shipment", "percent"),
    "program_refund_percent_after_second_shipment": ("Program refund after the second shipment", "percent"),
    "included_integration_sessions": ("Integration sessions included in a program", "sessions"),
}


def policy_values(raw: dict[str, str]) -> tuple[dict[str, int], dict[str, str]]:
    """The typed values as the policy's integers, and a plain-words problem for each that is not one; blank
    fields are left as they are."""
    values: dict[str, int] = {}
    problems: dict[str, str] = {}
    for name, (_label, unit) in POLICY_FORM.items():
        typed = (raw.get(name) or "").strip().replace("$", "").replace(",", "")
        if not typed:
            continue
        if unit == "dollars":
            try:
                amount = Decimal(typed)
            except InvalidOperation:
                problems[name] = "Type an amount in dollars, like 150 or 150.00."
                continue
            if amount != amount.quantize(Decimal("0.01")) or not amount.is_finite() or abs(amount) > 1_000_000:
                problems[name] = "Type an amount in dollars and cents, like 150.00."
                continue
            values[name] = int(amount * 100)
        elif typed.isdigit() and len(typed) <= 6:
            values[name] = int(typed)
        else:
            problems[name] = f"Type a whole number of {unit}."
    return values, problems
