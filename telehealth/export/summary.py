"""The record in plain words: each stored answer under its question's own label (intake FormField labels,
questionnaire item texts and option labels), blank answers left out, never a raw key, `null` or JSON. The
page (templates/export/) only lays these rows out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from telehealth.dosing import after_dose
from telehealth.dosing.models import DosingReport, SitterAttestation
from telehealth.export.record import PatientRecord
from telehealth.intake.consents import CONSENT_DOCUMENTS
from telehealth.intake.questionnaires import QUESTIONNAIRES
from telehealth.intake.sections import SECTIONS, US_TIME_ZONES, FormField
from telehealth.lib.us_states import US_STATES
from telehealth.prescribing.models import PlanBatch
from telehealth.prescribing.reassessment import score_change

ABOUT_SECTIONS = ("demographics", "address", "emergency_contact")  # shown under "About you", not repeated
REPORT_SYMPTOMS = {name: told for name, _asked, told in after_dose.REPORT_SYMPTOMS}  # dosing owns the table
ROLE_NAMES = {"patient": "you", "prescriber": "prescriber", "therapist": "therapist", "coordinator": "care coordinator"}
PURPOSES = {
    "consult": "Consultation",
    "integration": "Integration session",
    "program": "Home program",
    "late_cancel_fee": "Late cancellation fee",
    "no_show_fee": "Missed appointment fee",
}

Row = tuple[str, str]  # (label, value in words)


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def humanize(key: str) -> str:
    return key.replace("_", " ").capitalize()


def long_date(value: str | date) -> str:
    """2 April 1985, from a date or an ISO date string (anything else is shown as it was given)."""
    try:
        day = value if isinstance(value, date) else date.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{day.day} {day:%B %Y}"


def words(value: Any) -> str:
    """Any stored value as words: yes/no, a list joined by commas, never JSON."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(words(item) for item in value if not _blank(item))
    if isinstance(value, dict):
        return "; ".join(f"{humanize(str(k))}: {words(v)}" for k, v in sorted(value.items()) if not _blank(v))
    return str(value)


def field_answer(field: FormField, value: Any) -> str:
    options = dict(field.options)
    if field.kind == "yes_no":
        return "Yes" if value in (True, "yes", "true") else "No"
    if field.kind == "checklist":
        chosen = [options.get(item, humanize(str(item))) for item in (value if isinstance(value, list) else [value])]
        return ", ".join(chosen) if chosen else "None"
    if field.kind == "choice":
        return options.get(value, str(value))
    if field.kind == "date":
        return long_date(value)
    return words(value)


def section_rows(section_key: str, answers: dict[str, Any]) -> list[Row]:
    """One intake section's answers, in the form's order under the form's labels; blank ones omitted."""
    section = SECTIONS.get(section_key)
    if section is None:  # a step no longer asked: its stored keys, in words
        return [(humanize(key), words(value)) for key, value in sorted(answers.items()) if not _blank(value)]
    rows = [(field.label, field_answer(field, answers[field.name])) for field in section.fields if not _blank(answers.get(field.name))]
    known = {field.name for field in section.fields}
    rows += [(humanize(key), words(value)) for key, value in sorted(answers.items()) if key not in known and not _blank(value)]
    return [(label, value) for label, value in rows if value]


def about_you(record: PatientRecord) -> list[Row]:
    answers = record.answers
    demographics, address, contact = (answers.get(key, {}) for key in ABOUT_SECTIONS)
    legal = " ".join(part for part in (demographics.get("first_name"), demographics.get("last_name")) if part)
    rows: list[Row] = [("Name", record.account.full_name)]
    if legal and legal != record.account.full_name:
        rows.append(("Legal name", legal))
    if demographics.get("date_of_birth"):
        rows.append(("Date of birth", long_date(demographics["date_of_birth"])))
    rows.append(("Email", record.account.email))
    if demographics.get("phone"):
        rows.append(("Mobile phone", demographics["phone"]))
    state = record.patient.state_of_residence
    if state:
        rows.append(("State where you live", US_STATES.get(state, state)))
    rows.append(("Time zone", US_TIME_ZONES.get(record.patient.timezone, record.patient.timezone)))
    city_line = " ".join(
        part for part in (", ".join(p for p in (address.get("city"), address.get("state")) if p), address.get("postal_code")) if part
    )
    lines = [line for line in (address.get("line1"), address.get("line2"), city_line) if line]
    if lines:
        rows.append(("Shipping address", "\n".join(lines)))
    if contact.get("name"):
        detail = ", ".join(part for part in (contact.get("relationship"), contact.get("phone")) if part)
        rows.append(("Emergency contact", f"{contact['name']} ({detail})" if detail else contact["name"]))
    return rows


@dataclass(frozen=True)
class IntakePart:
    title: str
    rows: list[Row]


def intake_parts(record: PatientRecord) -> list[IntakePart]:
    by_key = {section.section: section for section in record.intake_sections}
    order = [key for key in SECTIONS if key in by_key] + sorted(key for key in by_key if key not in SECTIONS)
    parts = []
    for key in order:
        if key in ABOUT_SECTIONS:
            continue
        rows = section_rows(key, by_key[key].answers)
        if rows:
            parts.append(IntakePart(SECTIONS[key].title if key in SECTIONS else humanize(key), rows))
    return parts


@dataclass(frozen=True)
class AnsweredQuestionnaire:
    title: str
    answered_at: Any
    score: int
    band: str | None
    rows: list[Row]


def questionnaires(record: PatientRecord) -> list[AnsweredQuestionnaire]:
    out = []
    for response in record.responses:
        definition = QUESTIONNAIRES.get(response.questionnaire)
        rows: list[Row] = []
        if definition is None:
            rows = [(humanize(key), words(value)) for key, value in sorted(response.answers.items())]
        else:
            for item in definition.items:
                value = response.answers.get(item.key)
                if value is None:
                    continue
                try:
                    rows.append((item.text, item.label_for(int(value))))
                except (KeyError, TypeError, ValueError):
                    rows.append((item.text, words(value)))
        title = definition.title if definition else response.questionnaire.upper()
        out.append(AnsweredQuestionnaire(title, response.answered_at, response.score, response.band, rows))
    return out


def outcomes(record: PatientRecord) -> list[tuple[str, str]]:
    """PHQ-9 and GAD-7: the first score and the latest, and whether that is a response or a remission."""
    scores: dict[str, list[int]] = {}
    for response in record.responses:  # already in time order
        if response.questionnaire in ("phq9", "gad7"):
            scores.setdefault(response.questionnaire, []).append(response.score)
    out = []
    for key, series in sorted(scores.items()):
        change = score_change(key, series)
        if change is None:
            continue
        title = QUESTIONNAIRES[key].title
        if len(series) == 1:
            out.append((title, f"First score {change.baseline}; no later score yet."))
            continue
        verdict = (
            "remission" if change.remission else "a response (half or less of the first score)" if change.response else "no response yet"
        )
        out.append((title, f"From {change.baseline} to {change.latest} over {len(series)} answers: {verdict}."))
    return out


def consent_title(document: str) -> str:
    known = CONSENT_DOCUMENTS.get(document)
    return known.title if known else humanize(document)


def batch_words(batch: PlanBatch) -> str:
    sessions = (
        f"session {batch.first_session}"
        if batch.first_session == batch.last_session
        else f"sessions {batch.first_session} to {batch.last_session}"
    )
    dated = (batch.status == "delivered" and batch.delivered_at) or (
        batch.status == "shipped" and batch.shipped_at
    )  # the page gives the date
    parts = [f"{sessions}, {batch.units} troches" + ("" if dated else f", {batch.status.replace('_', ' ')}")]
    if batch.carrier or batch.tracking_number:
        parts.append(
            " ".join(
                p
                for p in (
                    f"by {batch.carrier}" if batch.carrier else None,
                    f"tracking {batch.tracking_number}" if batch.tracking_number else None,
                )
                if p
            )
        )
    if batch.lot_number:
        parts.append(f"lot {batch.lot_number}")
    if batch.beyond_use_date:
        parts.append(f"use by {long_date(batch.beyond_use_date)}")
    return "; ".join(parts)


def report_words(report: DosingReport) -> list[Row]:
    rows: list[Row] = [("Taken", "completed" if report.completed else "not completed"), ("Troches used", str(report.troches_used))]
    felt = [label for name, label in REPORT_SYMPTOMS.items() if getattr(report, name)]
    rows.append(("Side effects", ", ".join(felt) if felt else "none reported"))
    if report.other_side_effects:
        rows.append(("Other side effects", report.other_side_effects))
    rows.append(("Dissociation (0 to 10)", str(report.dissociation)))
    if report.systolic is not None:
        rows.append(("Blood pressure after", f"{report.systolic}/{report.diastolic}"))
    if report.emergency_services_called:
        rows.append(("Emergency services", "called"))
    if report.ended_early:
        rows.append(("Ended early", report.ended_early_reason or "yes"))
    if report.notes:
        rows.append(("Notes", report.notes))
    return rows


def attestation_words(attestation: SitterAttestation) -> str:
    if attestation.kind == "presence":
        return "was with you before the dose"
    said = "the session ended with you alert and safe" if attestation.outcome == "alert_and_safe" else "an event during the session"
    if attestation.event_description:
        said += f": {attestation.event_description}"
    if attestation.emergency_services_called:
        said += "; emergency services were called"
    if attestation.ended_early:
        said += "; ended before the observation window closed" + (
            f" ({attestation.ended_early_reason})" if attestation.ended_early_reason else ""
        )
    return said


def summary_context(record: PatientRecord) -> dict[str, Any]:
    sitters = {sitter.id: sitter for sitter in record.sitters}
    return {
        "about": about_you(record),
        "intake": intake_parts(record),
        "questionnaires": questionnaires(record),
        "outcomes": outcomes(record),
        "consent_title": consent_title,
        "batch_words": batch_words,
        "report_words": report_words,
        "attestation_words": attestation_words,
        "sitters_by_id": sitters,
        "role_names": ROLE_NAMES,
        "purposes": PURPOSES,
        "humanize": humanize,
    }
