"""Request and response bodies of the dosing API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from telehealth.lib.schema import RequestBody, ResponseBody

Name = Annotated[str, msgspec.Meta(max_length=200)]
Note = Annotated[str, msgspec.Meta(max_length=4000)]


class SitterRequest(RequestBody):
    full_name: Name
    email: Annotated[str, msgspec.Meta(max_length=320)]
    relationship: Annotated[str, msgspec.Meta(max_length=100)]
    phone: Annotated[str, msgspec.Meta(max_length=40)] = ""


class SitterBody(ResponseBody):
    id: uuid.UUID
    full_name: str
    email: str
    phone: str | None
    relationship: str
    status: str
    signed_at: datetime | None
    verified_at: datetime | None = None  # a coordinator's call with them
    verification_method: str | None = None  # video | phone
    verification_pending: bool = False  # signed, but not verified yet: they cannot be chosen for a session until then


class ScheduleRequest(RequestBody):
    starts_at: datetime
    sitter_id: uuid.UUID


class RescheduleRequest(RequestBody):
    starts_at: datetime
    sitter_id: uuid.UUID | None = None


class CheckInRequest(RequestBody):
    systolic: int
    diastolic: int
    pulse: int
    mood: int
    phq9_item9: int
    fasted_two_hours: bool
    no_alcohol_or_sedatives: bool


class GateBody(ResponseBody):
    code: str
    detail: str


class CheckInBody(ResponseBody):
    attempt: int
    checked_in_at: datetime
    held: bool
    urgent: bool
    crisis: bool
    care_team_contact: bool  # held; the care team will call before the next dose (the plan is not paused)
    gates: list[GateBody]
    recheck_from: datetime | None
    crisis_resources: list[str] | None = None


class ReportRequest(RequestBody):
    completed: bool
    troches_used: int
    nausea: bool = False
    vomiting: bool = False
    dizziness: bool = False
    dissociation: int = 0
    headache: bool = False
    bladder_symptoms: bool = False
    fainting: bool = False
    chest_pain: bool = False
    suicidal_thoughts: bool = False
    emergency_services_called: bool = False
    other_side_effects: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    systolic: int | None = None
    diastolic: int | None = None
    notes: Note | None = None
    ended_early_reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None  # required before report_from


class SessionBody(ResponseBody):
    id: uuid.UUID
    number: int
    status: str  # as stored
    shown_as: str  # scheduled, checked_in, waiting_for_sitter, unlocked, reported, held, cancelled
    scheduled_at: datetime
    sitter_id: uuid.UUID | None
    unlocked_at: datetime | None
    held_reason: str | None
    dose_mg: int | None = None  # once unlocked
    troches: int | None = None
    timer_ends_at: datetime | None = None
    # When the observation window after unlock closes: a report before it needs ended_early_reason.
    report_from: datetime | None = None
    report_from_local: str | None = None  # the same in the patient's zone, e.g. "2026-11-23T11:15:00-05:00"
    reported: bool = False


class InventoryBody(ResponseBody):
    delivered: int
    used: int
    lost: int
    on_hand: int


class DosingBody(ResponseBody):
    plan_id: uuid.UUID | None
    plan_status: str | None
    sessions_in_plan: int
    sessions: list[SessionBody]
    inventory: InventoryBody | None
    earliest_next: datetime | None


class LossRequest(RequestBody):
    troches: int
    what_happened: Annotated[str, msgspec.Meta(max_length=1000)]


class FlagBody(ResponseBody):
    id: uuid.UUID
    kind: str
    troches: int
    detail: str | None
    raised_at: datetime
    resolved_at: datetime | None
    resolution_note: str | None


class NextBatchBody(ResponseBody):
    released: bool
    early: bool
    detail: str


class SitterLinkBody(ResponseBody):
    purpose: str
    sitter_name: str
    patient_name: str
    session_at: datetime | None = None
    session_status: str | None = None
    timer_ends_at: datetime | None = None
    # When the observation window after unlock closes: an "alert and safe" end before it needs ended_early_reason.
    end_from: datetime | None = None
    end_from_local: str | None = None  # the same in the patient's zone (the sitter is with them)
    agreement_title: str | None = None
    agreement_version: str | None = None


class AgreementRequest(RequestBody):
    typed_name: Name
    adult: bool
    agreed: bool


class PresenceRequest(RequestBody):
    typed_name: Name


class PresenceBody(ResponseBody):
    next_link: str  # the sitter's page for the timer and the end of the session


class EndRequest(RequestBody):
    typed_name: Name
    outcome: Literal["alert_and_safe", "event"]
    event_description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    emergency_services_called: bool = False
    ended_early_reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""  # required before end_from, unless outcome is "event"


class ReviewRequest(RequestBody):
    note: Note
    decision: Literal["resume", "discontinue"]


class ResolveRequest(RequestBody):
    note: Annotated[str, msgspec.Meta(max_length=2000)]


class SeriousEventBody(ResponseBody):
    id: uuid.UUID
    source: str
    reasons: list[str]
    occurred_at: datetime
    reviewed_at: datetime | None
    review_note: str | None
    review_decision: str | None


class PrescriberSessionBody(ResponseBody):
    session: SessionBody
    check_ins: list[dict[str, Any]]
    report: dict[str, Any] | None
    sitter_present: bool
    sitter_end: dict[str, Any] | None  # with same_as_patient, as below
    # The presence came from where the patient acted in the day before: "address", or "device" (address and browser).
    presence_same_as_patient: str | None = None


class PlanDosingBody(ResponseBody):
    plan_id: uuid.UUID
    plan_status: str
    sessions: list[PrescriberSessionBody]
    inventory: InventoryBody
    serious_events: list[SeriousEventBody]
    inventory_flags: list[FlagBody]


class VerificationRequest(RequestBody):
    method: Annotated[str, msgspec.Meta(max_length=10, description="video or phone")]
    note: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class UnverifiedSitterBody(ResponseBody):
    sitter: SitterBody
    patient_id: uuid.UUID
    patient_name: str
    next_session_at: datetime | None  # a session already scheduled with them (named before the check was required)
