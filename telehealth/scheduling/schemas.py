"""Request and response bodies of the scheduling API."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Literal

import msgspec

from telehealth.lib.schema import RequestBody, ResponseBody

TypeName = Literal["consult", "reassessment", "integration"]


class SlotBody(ResponseBody):
    clinician_id: uuid.UUID
    clinician_name: str
    starts_at: datetime
    starts_at_local: str  # in the patient's zone, e.g. "2027-01-12T06:00:00-08:00"


class BookAppointment(RequestBody):
    type: TypeName
    clinician_id: uuid.UUID
    starts_at: datetime
    hold: bool = False


class AppointmentBody(ResponseBody):
    id: uuid.UUID
    type: str
    status: str
    clinician_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    hold_expires_at: datetime | None
    payment_id: uuid.UUID | None = None
    checkout_url: str | None = None  # Stripe Checkout, once asked for (POST /api/v1/billing/appointments/{id}/checkout)
    amount_cents: int | None = None


class FollowUpBody(RequestBody):
    patient_id: uuid.UUID
    starts_at: datetime


class CancelBody(RequestBody):
    accept_late_fee: bool = False


class RescheduleBody(RequestBody):
    starts_at: datetime
    accept_late_fee: bool = False


class WeeklyRangeBody(RequestBody):
    weekday: Annotated[int, msgspec.Meta(ge=0, le=6)]
    start: time
    end: time


class WeeklyHoursBody(RequestBody):
    ranges: Annotated[list[WeeklyRangeBody], msgspec.Meta(max_length=50)]


class OverrideBody(RequestBody):
    on_date: date
    kind: Literal["off", "extra"]
    start: time | None = None
    end: time | None = None


class TypeSettingsBody(RequestBody):
    duration_minutes: int | None = None
    buffer_before_minutes: int | None = None
    buffer_after_minutes: int | None = None
    minimum_notice_minutes: int | None = None
    horizon_days: int | None = None
    max_per_day: int | None = None
    step_minutes: int | None = None


class VisitConnectionBody(ResponseBody):
    participant: str
    joined_at: datetime
    left_at: datetime | None


class VisitBody(ResponseBody):
    """What the room (or the clinician's attestation) recorded of the visit; `started_at` null: not started."""

    appointment_id: uuid.UUID
    modality: str | None
    started_at: datetime | None
    start_evidence: str | None
    ended_at: datetime | None
    duration_seconds: int | None
    connections: list[VisitConnectionBody]
