"""The intake steps as data: each field's label, kind and limits, used to render the form, validate what
comes back (from a page or the JSON API) and feed screening. The questionnaires are steps too, defined in
`questionnaires.py`; consents are the last step (`consents.py`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from telehealth.intake.screening import CONDITIONS, MEDICATION_CLASSES
from telehealth.lib.errors import InvalidInput
from telehealth.lib.us_states import US_STATES
from telehealth.lib.validation import E164_PHONE, has_control_characters, parse_whole_number

POSTAL_CODE = re.compile(r"^\d{5}(-\d{4})?$")
US_TIME_ZONES = {
    "America/New_York": "Eastern",
    "America/Chicago": "Central",
    "America/Denver": "Mountain",
    "America/Phoenix": "Arizona",
    "America/Los_Angeles": "Pacific",
    "America/Anchorage": "Alaska",
    "Pacific/Honolulu": "Hawaii",
}
Kind = Literal["text", "textarea", "date", "phone", "postal_code", "choice", "yes_no", "checklist", "number"]


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: Kind
    required: bool = True
    options: tuple[tuple[str, str], ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 200
    hint: str | None = None


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: str
    fields: tuple[FormField, ...]

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Clean every field; raise InvalidInput naming each field that is missing or not acceptable."""
        cleaned: dict[str, Any] = {}
        problems: dict[str, str] = {}
        known = {field.name for field in self.fields}
        for name in raw:
            if name not in known:
                problems[name] = "is not a question on this step"
        for field in self.fields:
            try:
                cleaned[field.name] = _clean(field, raw.get(field.name))
            except ValueError as problem:
                problems[field.name] = str(problem)
        if not problems and self.key == "vitals" and cleaned["bp_diastolic"] >= cleaned["bp_systolic"]:
            problems["bp_diastolic"] = "must be lower than the systolic (top) number"
        if problems:
            raise InvalidInput(f"intake.{self.key}.invalid", "Some answers need another look.", fields=problems)
        return cleaned


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _clean(field: FormField, value: Any) -> Any:
    if field.kind == "checklist":
        chosen = [value] if isinstance(value, str) else value or []
        if not isinstance(chosen, list) or not all(isinstance(item, str) for item in chosen):
            raise ValueError("must be a list of choices")
        allowed = {key for key, _ in field.options}
        if unknown := [item for item in chosen if item not in allowed]:
            raise ValueError(f"has unknown choices: {', '.join(map(str, unknown))[:80]}")
        return sorted(set(chosen))
    if _blank(value):
        if field.required:
            raise ValueError("is required")
        return None
    if field.kind == "yes_no":
        if value in (True, "yes", "true"):
            return True
        if value in (False, "no", "false"):
            return False
        raise ValueError("must be yes or no")
    if field.kind == "number":
        number = parse_whole_number(value)
        if number is None:
            raise ValueError("must be a whole number")
        assert field.minimum is not None and field.maximum is not None, field.name  # every number field has both
        if not field.minimum <= number <= field.maximum:
            raise ValueError(f"must be between {field.minimum} and {field.maximum}")
        return number
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = value.strip()
    if has_control_characters(text if field.kind != "textarea" else text.replace("\n", "")):
        raise ValueError("contains characters that are not allowed")
    if len(text) > field.max_length:
        raise ValueError(f"must be at most {field.max_length} characters")
    if field.kind == "date":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if field.kind == "phone" and not E164_PHONE.match(text):
        raise ValueError("must be in international format, e.g. +12125550123")
    if field.kind == "postal_code" and not POSTAL_CODE.match(text):
        raise ValueError("must be a 5-digit ZIP code")
    if field.kind == "choice" and text not in {key for key, _ in field.options}:
        raise ValueError("is not one of the choices")
    return text


YES_NO = (("yes", "Yes"), ("no", "No"))
STATE_CHOICES = tuple(US_STATES.items())

SECTIONS: dict[str, Section] = {
    section.key: section
    for section in (
        Section(
            "demographics",
            "About you",
            "Your legal name and details, as on your photo ID.",
            (
                FormField("first_name", "Legal first name", "text", max_length=99),
                FormField("last_name", "Legal last name", "text", max_length=99),
                FormField("date_of_birth", "Date of birth", "date"),
                FormField("phone", "Mobile phone", "phone", hint="International format, e.g. +12125550123"),
                FormField("timezone", "Your time zone", "choice", options=tuple(US_TIME_ZONES.items())),
            ),
        ),
        Section(
            "address",
            "Shipping address",
            "Where your medicine would be delivered. It must be in the state where you live.",
            (
                FormField("line1", "Street address", "text"),
                FormField("line2", "Apartment, suite (optional)", "text", required=False),
                FormField("city", "City", "text", max_length=100),
                FormField("state", "State", "choice", options=STATE_CHOICES),
                FormField("postal_code", "ZIP code", "postal_code", max_length=10),
            ),
        ),
        Section(
            "emergency_contact",
            "Emergency contact",
            "Someone we may call if we cannot reach you in an emergency.",
            (
                FormField("name", "Full name", "text"),
                FormField("relationship", "Relationship to you", "text", max_length=60),
                FormField("phone", "Phone", "phone", hint="International format, e.g. +12125550123"),
            ),
        ),
        Section(
            "medical_history",
            "Medical history",
            "Have you ever been diagnosed with, or treated for, any of these?",
            tuple(FormField(key, label, "yes_no", options=YES_NO) for key, label in CONDITIONS.items()),
        ),
        Section(
            "medications",
            "Current medicines",
            "Tick any you take now, even occasionally. Some interact with ketamine.",
            (
                FormField("classes", "I take", "checklist", required=False, options=tuple(MEDICATION_CLASSES.items())),
                FormField("other", "Other medicines and supplements (optional)", "textarea", required=False, max_length=2000),
            ),
        ),
        Section(
            "substance_use",
            "Alcohol and other substances",
            "Honest answers keep you safe; they are seen only by your care team.",
            (
                FormField("ketamine_misuse_ever", "Have you ever used ketamine other than as prescribed?", "yes_no", options=YES_NO),
                FormField(
                    "substance_dependence_12_months",
                    "In the last 12 months, have you been dependent on alcohol or any drug?",
                    "yes_no",
                    options=YES_NO,
                ),
                FormField("alcohol_drinks_per_week", "Alcoholic drinks in a usual week", "number", minimum=0, maximum=100),
            ),
        ),
        Section(
            "pregnancy",
            "Pregnancy",
            "Ketamine is not used during pregnancy or breastfeeding. Answer no if these cannot apply to you.",
            (
                FormField("pregnant", "Are you pregnant, or could you be?", "yes_no", options=YES_NO),
                FormField("breastfeeding", "Are you breastfeeding?", "yes_no", options=YES_NO),
            ),
        ),
        Section(
            "vitals",
            "Blood pressure, height and weight",
            "Sit quietly for 5 minutes, then take your blood pressure with a home monitor.",
            (
                FormField("bp_systolic", "Blood pressure, top number (systolic)", "number", minimum=70, maximum=250),
                FormField("bp_diastolic", "Blood pressure, bottom number (diastolic)", "number", minimum=40, maximum=150),
                FormField("pulse", "Pulse (beats per minute)", "number", minimum=30, maximum=220),
                FormField("height_inches", "Height in inches", "number", minimum=48, maximum=96),
                FormField("weight_pounds", "Weight in pounds", "number", minimum=70, maximum=700),
            ),
        ),
    )
}

QUESTIONNAIRE_STEPS = ("phq9", "gad7", "cssrs")


def step_title(step: str) -> str:
    from telehealth.intake.questionnaires import QUESTIONNAIRES

    if step in SECTIONS:
        return SECTIONS[step].title
    if step in QUESTIONNAIRES:
        return QUESTIONNAIRES[step].title
    return "Consents"


CONSENTS_STEP = "consents"
STEPS: tuple[str, ...] = (*SECTIONS, *QUESTIONNAIRE_STEPS, CONSENTS_STEP)


def vitals_in_words(answers: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """The intake's vitals as a clinician reads them, e.g. [("Blood pressure", "152/96 mmHg"), ("Pulse", "70 per minute")]:
    what the encounter and the patient's page show in plain sight (only the answers given)."""
    saved = answers.get("vitals", {})

    def given(*names: str) -> bool:
        return all(saved.get(name) is not None for name in names)

    shown = [
        ("Blood pressure", f"{saved.get('bp_systolic')}/{saved.get('bp_diastolic')} mmHg", given("bp_systolic", "bp_diastolic")),
        ("Pulse", f"{saved.get('pulse')} per minute", given("pulse")),
        ("Height", f"{saved.get('height_inches')} in", given("height_inches")),
        ("Weight", f"{saved.get('weight_pounds')} lb", given("weight_pounds")),
    ]
    return [(label, value) for label, value, present in shown if present]
