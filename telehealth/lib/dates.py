"""Calendar arithmetic shared by the waiting list and screening."""

from __future__ import annotations

from datetime import UTC, date, datetime

from telehealth.lib.errors import BadRequest

# Instants a request may name: far beyond any appointment, and far from datetime's year-9999 edge, where adding
# a day overflows (a 500 before this bound).
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)


def age_on(date_of_birth: date, on: date) -> int:
    """Whole years of age on `on`. The birthday counts from its own day; someone born on 29 February
    turns a year older on 1 March in common years (the later reading, so the under-18 rule errs safe)."""
    had_birthday = (on.month, on.day) >= (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - (0 if had_birthday else 1)


def instant_in_range(value: datetime, field: str) -> datetime:
    """`value` when it falls from 2000 to 2099 (UTC); otherwise a 400 naming `field` and the bound."""
    if not EARLIEST_INSTANT <= value < LATEST_INSTANT:
        raise BadRequest(
            "request.date_out_of_range",
            f"`{field}` must be from 2000 to 2099.",
            fields={field: "must be from 2000-01-01 to 2099-12-31 (UTC)"},
        )
    return value
