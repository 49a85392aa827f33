"""A form field's name in the words its page uses, for refusal lists: the services name fields by their keys
(the API's contract), the pages speak to people."""

from __future__ import annotations

FIELD_WORDS = {
    "starts_at": "Date and time",
    "systolic": "Blood pressure, top number",
    "diastolic": "Blood pressure, bottom number",
    "pulse": "Pulse",
    "mood": "Mood",
    "phq9_item9": "Thoughts of self-harm",
    "typed_name": "Your typed name",
    "doses_mg": "Doses (mg)",
    "strength_mg": "Troche strength (mg)",
    "min_hours_between": "Hours between sessions",
    "shipment_sessions": "Sessions per shipment",
    "sitter_id": "Sitter",
    "troches_used": "Troches used",
    "ended_early_reason": "Why the session ended early",
    "pdmp_checked_at": "PDMP check time",
    "location_state": "Where the patient is",
    "pharmacy_id": "Pharmacy",
    "clinician_id": "Clinician",
    "expires_on": "Expires on",
    "note": "Note",
    "reason": "Reason",
    "code": "Code",
}


def field_words(name: str) -> str:
    """The page's words for a field key; unknown keys read as words ("lot_number" -> "Lot number")."""
    words = FIELD_WORDS.get(name) or name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]  # not str.capitalize(): a label given already ("PHQ-9, question 9") keeps its capitals
