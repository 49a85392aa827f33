"""Request and response bodies of the prescribing and pharmacy API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from telehealth.lib.schema import RequestBody, ResponseBody

ShortText = Annotated[str, msgspec.Meta(max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=2000)]


class EncounterUpdate(RequestBody):
    identity_checked: bool | None = None
    identity_method: ShortText | None = None
    location_state: Annotated[str, msgspec.Meta(min_length=2, max_length=2)] | None = None
    pdmp_checked_at: datetime | None = None
    pdmp_state: Annotated[str, msgspec.Meta(min_length=2, max_length=2)] | None = None
    pdmp_reference: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    pdmp_summary: LongText | None = None
    vitals_reviewed: bool | None = None
    vitals_note: LongText | None = None


class Acknowledgement(RequestBody):
    rule_id: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class DecisionBody(RequestBody):
    decision: Literal["start_plan", "decline", "refer_out"]
    reason: LongText | None = None


class EncounterBody(ResponseBody):
    id: uuid.UUID
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    identity_checked: bool | None
    identity_method: str | None
    location_state: str | None
    pdmp_checked_at: datetime | None
    pdmp_state: str | None
    pdmp_reference: str | None
    pdmp_summary: str | None
    vitals_reviewed: bool
    vitals_note: str | None
    decision: str | None
    decision_reason: str | None
    prescribing_blocked: dict[str, Any] | None  # {"code", "detail"} while prescribing is not possible
    chart: dict[str, Any] | None = None


class PlanRequest(RequestBody):
    product: Annotated[str, msgspec.Meta(max_length=120)]
    strength_mg: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    doses_mg: Annotated[list[Annotated[int, msgspec.Meta(ge=0, le=100_000)]], msgspec.Meta(max_length=100)]
    min_hours_between: Annotated[int, msgspec.Meta(ge=0, le=10_000)]
    directions: Annotated[str, msgspec.Meta(max_length=1000)]
    shipment_sessions: Annotated[list[Annotated[int, msgspec.Meta(ge=0, le=100)]], msgspec.Meta(max_length=100)] | None = None
    pharmacy_id: uuid.UUID | None = None
    refills: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0


class SignRequest(RequestBody):
    password: Annotated[str, msgspec.Meta(max_length=200)]
    code: Annotated[str, msgspec.Meta(max_length=10)]


class ReasonBody(RequestBody):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class ReleaseBody(RequestBody):
    override_reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class BatchBody(ResponseBody):
    id: uuid.UUID
    sequence: int
    sessions: str  # e.g. "1-3"
    units: int
    status: str
    rejected_reason: str | None
    release_override_reason: str | None
    lot_number: str | None
    beyond_use_date: date | None
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None


class PlanBody(ResponseBody):
    id: uuid.UUID
    patient_id: uuid.UUID
    status: str
    product: str
    strength_mg: int
    sessions: int
    doses_mg: list[int]
    units_per_session: list[int]
    min_hours_between: int
    directions: str
    shipment_sessions: list[int]
    refills: int
    content_sha256: str | None
    signed_at: datetime | None
    status_reason: str | None
    batches: list[BatchBody]
    # What made the signature lawful on its day: telemedicine_flexibilities, in_person_evaluation (with its id)
    # or special_registration (with its id); None until signed.
    prescribing_basis: str | None = None
    in_person_evaluation_id: uuid.UUID | None = None
    special_registration_id: uuid.UUID | None = None


class FillRequest(RequestBody):
    lot_number: Annotated[str, msgspec.Meta(max_length=60)]
    beyond_use_date: date
    units: Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class ShipRequest(RequestBody):
    carrier: Annotated[str, msgspec.Meta(max_length=60)]
    tracking_number: Annotated[str, msgspec.Meta(max_length=100)]
    signature_required: bool = True


class QueueLine(ResponseBody):
    """What the pharmacist sees: only what filling needs."""

    batch_id: uuid.UUID
    status: str
    sequence: int
    patient_name: str
    date_of_birth: str | None
    ship_to: dict[str, str]
    prescriber_name: str
    prescriber_dea: str | None
    product: str
    strength_mg: int
    units: int
    sessions: str
    directions: str


class PharmacyQueueBody(ResponseBody):
    """The pharmacist's own pharmacy and its batches; with no pharmacy, none and `notice` says why."""

    pharmacy_id: uuid.UUID | None
    pharmacy_name: str | None
    notice: str | None
    batches: list[QueueLine]


class PharmacyBody(ResponseBody):
    id: uuid.UUID
    name: str


class PharmacistBody(ResponseBody):
    """A pharmacist account and the one pharmacy whose queue it works (None: sees nothing yet)."""

    id: uuid.UUID
    full_name: str
    email: str
    is_active: bool
    pharmacy: PharmacyBody | None


class PharmacyAssignment(RequestBody):
    pharmacy_id: uuid.UUID


class ShipmentBody(ResponseBody):
    """What the patient sees of their shipments."""

    sequence: int
    status: str
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None
