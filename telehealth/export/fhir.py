"""The record as a FHIR R4 Bundle (type collection), built as plain JSON and validated with the
`fhir.resources` R4B models (FHIR 4.3, the R4 line) before it leaves: Patient, QuestionnaireResponse (each
questionnaire and intake section), Observation (scores, check-in vitals, session reports), Appointment,
MedicationRequest (each signed plan) and Consent (each signature)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from telehealth.export.record import PatientRecord
from telehealth.intake.consents import CONSENT_DOCUMENTS
from telehealth.intake.questionnaires import QUESTIONNAIRES

LOINC = "http://loinc.org"
SCORE_CODES = {
    "phq9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score"),
    "gad7": ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score"),
}
APPOINTMENT_STATUS = {
    "held": "pending",
    "booked": "booked",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "no_show": "noshow",
    "expired": "cancelled",
}
PLAN_STATUS = {
    "signed": "active",
    "sent_to_pharmacy": "active",
    "active": "active",
    "paused": "on-hold",
    "completed": "completed",
    "discontinued": "stopped",
}
MM_HG = {"unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
REPORT_ANSWERS = (
    "nausea",
    "vomiting",
    "dizziness",
    "headache",
    "bladder_symptoms",
    "fainting",
    "chest_pain",
    "suicidal_thoughts",
    "emergency_services_called",
)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _answer(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    return {"valueString": value if isinstance(value, str) else json.dumps(value, sort_keys=True)}


def _items(answers: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"linkId": key, "answer": [_answer(value)]} for key, value in sorted(answers.items()) if value not in (None, "", [], {})]


def _code(text: str, code: str | None = None, display: str | None = None) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": text} if code else {"text": text}


def _patient(record: PatientRecord) -> dict[str, Any]:
    demographics, address = record.answers.get("demographics", {}), record.answers.get("address", {})
    given, family = demographics.get("first_name"), demographics.get("last_name")
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(record.patient.id),
        "name": [{"text": record.account.full_name, **({"given": [given]} if given else {}), **({"family": family} if family else {})}],
        "telecom": [{"system": "email", "value": record.account.email}],
    }
    if demographics.get("date_of_birth"):
        resource["birthDate"] = demographics["date_of_birth"]
    if address.get("line1"):
        resource["address"] = [
            {
                "line": [line for line in (address.get("line1"), address.get("line2")) if line],
                "city": address.get("city"),
                "state": address.get("state"),
                "postalCode": address.get("postal_code"),
                "country": "US",
            }
        ]
    return resource


def resources(record: PatientRecord) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{record.patient.id}"}
    out = [_patient(record)]
    for section in record.intake_sections:
        out.append(
            {
                "resourceType": "QuestionnaireResponse",
                "id": f"intake-{section.section.replace('_', '-')}",
                "status": "completed",
                "questionnaire": f"urn:telehealth:intake:{section.section}",
                "subject": subject,
                "authored": _when(section.saved_at),
                "item": _items(section.answers),
            }
        )
    for response in record.responses:
        title = QUESTIONNAIRES[response.questionnaire].title if response.questionnaire in QUESTIONNAIRES else response.questionnaire
        out.append(
            {
                "resourceType": "QuestionnaireResponse",
                "id": str(response.id),
                "status": "completed",
                "questionnaire": f"urn:telehealth:questionnaire:{response.questionnaire}|{response.version}",
                "subject": subject,
                "authored": _when(response.answered_at),
                "item": _items(response.answers),
            }
        )
        code, display = SCORE_CODES.get(response.questionnaire, (None, None))
        out.append(
            {
                "resourceType": "Observation",
                "id": f"score-{response.id}",
                "status": "final",
                "subject": subject,
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
                "code": _code(f"{title} total score", code, display),
                "effectiveDateTime": _when(response.answered_at),
                "valueInteger": response.score,
                "derivedFrom": [{"reference": f"QuestionnaireResponse/{response.id}"}],
                **({"note": [{"text": response.band}]} if response.band else {}),
            }
        )
    for appointment, clinician in record.appointments:
        out.append(
            {
                "resourceType": "Appointment",
                "id": str(appointment.id),
                "status": APPOINTMENT_STATUS.get(appointment.status, "proposed"),
                "serviceType": [{"text": appointment.appointment_type}],
                "start": _when(appointment.starts_at),
                "end": _when(appointment.ends_at),
                "participant": [
                    {"actor": {**subject, "display": record.account.full_name}, "status": "accepted"},
                    {"actor": {"display": clinician}, "status": "accepted"},
                ],
            }
        )
    for plan, prescriber in record.plans:
        units = [dose // plan.strength_mg for dose in plan.doses_mg]
        out.append(
            {
                "resourceType": "MedicationRequest",
                "id": str(plan.id),
                "status": PLAN_STATUS.get(plan.status, "unknown"),
                "intent": "order",
                "medicationCodeableConcept": {"text": f"{plan.product} {plan.strength_mg} mg"},
                "subject": subject,
                "authoredOn": _when(plan.signed_at),
                "requester": {"display": prescriber},
                "dosageInstruction": [
                    {
                        "sequence": n,
                        "text": (
                            f"Session {n}: {dose} mg ({units[n - 1]} units), "
                            f"at least {plan.min_hours_between} h after the last. {plan.directions}"
                        ),
                    }
                    for n, dose in enumerate(plan.doses_mg, start=1)
                ],
                "dispenseRequest": {"numberOfRepeatsAllowed": plan.refills, "quantity": {"value": sum(units), "unit": "troche"}},
            }
        )
    for row in record.sessions:
        for check_in in record.check_ins.get(row.id, []):
            out.append(
                {
                    "resourceType": "Observation",
                    "id": f"check-in-{check_in.id}",
                    "status": "final",
                    "subject": subject,
                    "code": _code("Blood pressure panel", "85354-9", "Blood pressure panel with all children optional"),
                    "effectiveDateTime": _when(check_in.checked_in_at),
                    "component": [
                        {
                            "code": _code("Systolic blood pressure", "8480-6", "Systolic blood pressure"),
                            "valueQuantity": {"value": check_in.systolic, **MM_HG},
                        },
                        {
                            "code": _code("Diastolic blood pressure", "8462-4", "Diastolic blood pressure"),
                            "valueQuantity": {"value": check_in.diastolic, **MM_HG},
                        },
                        {
                            "code": _code("Heart rate", "8867-4", "Heart rate"),
                            "valueQuantity": {
                                "value": check_in.pulse,
                                "unit": "/min",
                                "system": "http://unitsofmeasure.org",
                                "code": "/min",
                            },
                        },
                    ],
                }
            )
        if (report := record.reports.get(row.id)) is not None:
            out.append(
                {
                    "resourceType": "Observation",
                    "id": f"report-{row.id}",
                    "status": "final",
                    "subject": subject,
                    "code": _code(f"Home session {row.number} report"),
                    "effectiveDateTime": _when(report.reported_at),
                    "valueString": ("completed" if report.completed else "not completed") + f", {report.troches_used} troches used",
                    "component": [{"code": _code(name.replace("_", " ")), "valueBoolean": getattr(report, name)} for name in REPORT_ANSWERS]
                    + [{"code": _code("dissociation (0-10)"), "valueInteger": report.dissociation}],
                }
            )
    for consent in record.consents:
        document = CONSENT_DOCUMENTS.get(consent.document)
        out.append(
            {
                "resourceType": "Consent",
                "id": str(consent.id),
                "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment"}]},
                "category": [{"text": document.title if document else consent.document}],
                "patient": subject,
                "dateTime": _when(consent.signed_at),
                "policy": [{"uri": f"urn:telehealth:consent:{consent.document}|{consent.version}"}],
                "identifier": [{"system": "urn:telehealth:consent-text-sha256", "value": consent.content_sha256}],
            }
        )
    return out


def bundle(record: PatientRecord, *, base_url: str, now: datetime) -> str:
    """The validated Bundle as JSON; a resource that does not fit FHIR raises here, never reaches the patient."""
    entries = [{"fullUrl": f"{base_url}/fhir/{r['resourceType']}/{r['id']}", "resource": r} for r in resources(record)]
    validated = Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "timestamp": now.isoformat(), "entry": entries})
    return validated.model_dump_json(exclude_none=True)
