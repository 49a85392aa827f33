"""Request and response bodies of the intake API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec

from telehealth.lib.schema import RequestBody, ResponseBody


class StepAnswers(RequestBody):
    answers: dict[str, Any]


class ConsentSigning(RequestBody):
    document: Annotated[str, msgspec.Meta(max_length=60)]
    typed_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ContactNote(RequestBody):
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class StepState(ResponseBody):
    key: str
    title: str
    done: bool


class ConsentToSign(ResponseBody):
    document: str
    title: str
    version: str
    sha256: str


class PatientResult(ResponseBody):
    """What the patient sees: plain words, never rule ids."""

    outcome: str
    headline: str
    explanations: list[str]
    next_step: str
    crisis: bool


class IntakeOverview(ResponseBody):
    status: str
    steps: list[StepState]
    next_step: str | None
    consents_to_sign: list[ConsentToSign]
    result: PatientResult | None = None


class StepSavedBody(ResponseBody):
    step: str
    next_step: str | None
    crisis: bool
    crisis_resources: list[str] | None = None


class ClinicianReason(ResponseBody):
    rule_id: str
    outcome: str
    text: str
    evidence: str
    crisis: bool


class StaffIntakeView(ResponseBody):
    patient_id: uuid.UUID
    status: str
    submitted_at: datetime | None
    answers: dict[str, Any]
    outcome: str | None
    reasons: list[ClinicianReason]
    open_crisis: bool


class EscalationBody(ResponseBody):
    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    kind: str
    opened_at: datetime
