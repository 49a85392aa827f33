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
    "doses_mg": "Dose per session",
    "strength_mg": "Strength",
    "min_hours_between": "Minimum hours between sessions",
    "shipment_sessions": "Sessions per shipment",
    "sitter_id": "Sitter",
    "troches_used": "Troches used",
    "ended_early_reason": "Why the session ended early",
    "pdmp_checked_at": "PDMP checked at",
    "location_state": "Where the patient is now",
    "pharmacy_id": "Pharmacy",
    "clinician_id": "Clinician",
    "expires_on": "Expires on",
    "note": "Note",
    "reason": "Reason",
    "code": "6-digit code",
    "identity_checked": "Identity checked",
    "identity_method": "How identity was checked",
    "pdmp_state": "PDMP state",
    "pdmp_reference": "PDMP reference",
    "pdmp_summary": "PDMP summary",
    "vitals_reviewed": "Vitals reviewed",
    "vitals_note": "Vitals note",
    "acknowledgements": "Screening flag notes",
    "rule_id": "Screening flag",
    "decision": "Decision",
    "product": "Product",
    "directions": "Directions",
    "refills": "Refills",
    "password": "Password",
    "override_reason": "Reason to release now",
    "lot_number": "Lot number",
    "beyond_use_date": "Beyond-use date",
    "units": "Units filled",
    "carrier": "Carrier",
    "tracking_number": "Tracking number",
}


def field_words(name: str) -> str:
    """The page's words for a field key; unknown keys read as words ("lot_number" -> "Lot number")."""
    words = FIELD_WORDS.get(name) or name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]  # not str.capitalize(): a label given already ("PHQ-9, question 9") keeps its capitals
