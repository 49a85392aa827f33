"""Small input checks shared by several areas (one definition each)."""

from __future__ import annotations

import re

E164_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, newline and carriage return are allowed


def has_control_characters(text: str) -> bool:
    """NUL and other control characters: PostgreSQL refuses NUL, and none belongs in a name or an answer."""
    return bool(_CONTROL.search(text))


def plain_text_problem(text: str, *, longest: int) -> str | None:
    """Why free text (a message, a note, a report) cannot be stored, or None. Line breaks and tabs are fine."""
    if len(text) > longest or has_control_characters(text):
        return f"must be plain text of at most {longest} characters"
    return None


def parse_whole_number(raw: object) -> int | None:
    """An int, or a string of ASCII digits (as from a form); None for anything else, booleans included."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        # isascii() too: str.isdigit() accepts "²" and other digits int() would choke on or misread.
        if text.isascii() and text.isdigit():
            return int(text)
    return None
