"""Calendar arithmetic shared by the waiting list and screening."""

from __future__ import annotations

from datetime import date


def age_on(date_of_birth: date, on: date) -> int:
    """Whole years of age on `on`. The birthday counts from its own day; someone born on 29 February
    turns a year older on 1 March in common years (the later reading, so the under-18 rule errs safe)."""
    had_birthday = (on.month, on.day) >= (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - (0 if had_birthday else 1)
