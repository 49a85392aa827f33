"""Consult encounters, screening-flag acknowledgements, troche plans, their pharmacy batches, and the
partner pharmacies with their staff. A signed plan never changes: its SHA-256 over the canonical content is stored with the
signature, and any change needs a new plan."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key

LIVE_PLAN_SQL = "status IN ('signed', 'sent_to_pharmacy', 'active', 'paused')"
PRESCRIBING_BASES = ("telemedicine_flexibilities", "in_person_evaluation", "special_registration")


def _fk(table: str, *, nullable: bool = False, index: bool = True, unique: bool = False, ondelete: str = "RESTRICT") -> Any:
    return Field(sa_column=Column(Uuid, ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable, index=index, unique=unique))


class Pharmacy(SQLModel, table=True):
    """The partner compounding pharmacy (or pharmacies) plans are sent to."""

    __tablename__ = "pharmacy"

    id: uuid.UUID = uuid_primary_key()
    name: str = Field(max_length=200, unique=True)
    phone: str = Field(max_length=40)
    address: str = Field(max_length=300)
    created_at: datetime = utc_timestamp()


class PharmacyStaff(SQLModel, table=True):
    """A pharmacist's pharmacy: the one organisation whose queue and batches they see and work (the primary
    key makes it exactly one). No row, no queue. A coordinator assigns it (prescribing.pharmacy_staff)."""

    __tablename__ = "pharmacy_staff"

    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True))
    pharmacy_id: uuid.UUID = _fk("pharmacy")
    assigned_at: datetime = utc_timestamp()


class Encounter(SQLModel, table=True):
    """What the prescriber records in a consult or reassessment: identity, where the patient is right now,
    the PDMP check, vitals, and the decision."""

    __tablename__ = "encounter"
    __table_args__ = (
        CheckConstraint("decision IS NULL OR decision IN ('start_plan', 'decline', 'refer_out')", name="decision_known"),
        CheckConstraint("decision IS NULL OR decision = 'start_plan' OR decision_reason IS NOT NULL", name="decline_has_reason"),
    )

    id: uuid.UUID = uuid_primary_key()
    appointment_id: uuid.UUID = _fk("appointment", unique=True, index=False)
    patient_id: uuid.UUID = _fk("patient")
    prescriber_id: uuid.UUID = _fk("user_account")
    opened_at: datetime = utc_timestamp()
    identity_checked: bool | None = None
    identity_method: str | None = Field(default=None, max_length=200)
    location_state: str | None = Field(default=None, max_length=2)
    location_recorded_at: datetime | None = utc_timestamp(nullable=True)
    pdmp_checked_at: datetime | None = utc_timestamp(nullable=True)
    pdmp_state: str | None = Field(default=None, max_length=2)
    pdmp_reference: str | None = Field(default=None, max_length=100)
    pdmp_summary: str | None = Field(default=None, max_length=2000)
    vitals_reviewed: bool = False
    vitals_note: str | None = Field(default=None, max_length=2000)
    decision: str | None = Field(default=None, max_length=20)
    decision_reason: str | None = Field(default=None, max_length=2000)
    decided_at: datetime | None = utc_timestamp(nullable=True)


class FlagAcknowledgement(SQLModel, table=True):
    """A prescriber's note on one needs_review flag from screening."""

    __tablename__ = "flag_acknowledgement"

    encounter_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("encounter.id", ondelete="CASCADE"), primary_key=True))
    rule_id: str = Field(max_length=80, primary_key=True)
    note: str = Field(max_length=2000)
    acknowledged_by: uuid.UUID = _fk("user_account", index=False)
    acknowledged_at: datetime = utc_timestamp()


class TrochePlan(SQLModel, table=True):
    __tablename__ = "troche_plan"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'signed', 'sent_to_pharmacy', 'active', 'paused', 'completed', 'discontinued')", name="status_known"
        ),
        CheckConstraint("refills = 0", name="no_refills"),
        CheckConstraint("sessions BETWEEN 1 AND 100 AND strength_mg > 0 AND min_hours_between > 0", name="numbers_valid"),
        # The hardest limits of the safety envelope (settings.ENVELOPE_*), whatever writes the row: the service
        # refuses first with words (rules.check_plan); the database refuses even a row written around it.
        CheckConstraint(
            "sessions <= 12 AND min_hours_between >= 48 AND jsonb_array_length(doses_mg) = sessions "
            "AND NOT jsonb_path_exists(doses_mg, '$[*] ? (@ > 400 || @ < 1)')",
            name="within_safety_envelope",
        ),
        CheckConstraint(
            "status = 'draft' OR status = 'discontinued' OR (content_sha256 IS NOT NULL AND signed_at IS NOT NULL)", name="signed_has_hash"
        ),
        CheckConstraint(f"prescribing_basis IS NULL OR prescribing_basis IN {PRESCRIBING_BASES}", name="basis_known"),
        # The basis names its record, and only its own: an evaluation for one, a special registration for the other.
        CheckConstraint(
            "(in_person_evaluation_id IS NOT NULL) = (prescribing_basis IS NOT DISTINCT FROM 'in_person_evaluation') AND "
            "(special_registration_id IS NOT NULL) = (prescribing_basis IS NOT DISTINCT FROM 'special_registration')",
            name="basis_cites_its_record",
        ),
        # One active plan per patient, whatever the application does.
        Index("uq_troche_plan_one_live_per_patient", "patient_id", unique=True, postgresql_where=text(LIVE_PLAN_SQL)),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _fk("patient")
    encounter_id: uuid.UUID = _fk("encounter")
    prescriber_id: uuid.UUID = _fk("user_account", index=False)
    pharmacy_id: uuid.UUID = _fk("pharmacy", index=False)
    status: str = Field(max_length=20)
    product: str = Field(max_length=120)
    strength_mg: int
    sessions: int
    doses_mg: list[int] = Field(sa_column=Column(JSONB, nullable=False))  # one per session: the titration
    min_hours_between: int
    directions: str = Field(max_length=1000)
    shipment_sessions: list[int] = Field(sa_column=Column(JSONB, nullable=False))  # sessions per batch, e.g. [3, 3]
    refills: int = 0
    content_sha256: str | None = Field(default=None, max_length=64)
    signed_at: datetime | None = utc_timestamp(nullable=True)
    # What made the signature lawful on its day (prescribing.basis), with the record it rests on. Not part of
    # the signed content: it is why the prescriber could sign, not what they prescribed.
    prescribing_basis: str | None = Field(default=None, max_length=30)
    in_person_evaluation_id: uuid.UUID | None = _fk("in_person_evaluation", nullable=True, index=False)
    special_registration_id: uuid.UUID | None = _fk("special_registration", nullable=True)
    status_reason: str | None = Field(default=None, max_length=2000)
    created_at: datetime = utc_timestamp()
    updated_at: datetime = utc_timestamp()


class InPersonEvaluation(SQLModel, table=True):
    """A prescriber examined the patient in person (date and place, and who recorded it): after the telemedicine
    flexibilities end, the basis on which that prescriber may sign the patient's plans."""

    __tablename__ = "in_person_evaluation"
    __table_args__ = (
        CheckConstraint("length(btrim(place)) > 0", name="place_given"),
        Index("ix_in_person_evaluation_patient_prescriber", "patient_id", "prescriber_id"),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _fk("patient", index=False)
    prescriber_id: uuid.UUID = _fk("user_account", index=False)
    evaluated_on: date
    place: str = Field(max_length=300)
    recorded_by: uuid.UUID = _fk("user_account", index=False)
    recorded_at: datetime = utc_timestamp()


class PlanBatch(SQLModel, table=True):
    """One shipment of a plan: the sessions it covers and the units computed for them."""

    __tablename__ = "plan_batch"
    __table_args__ = (
        CheckConstraint(
            "status IN ('held', 'queued', 'accepted', 'rejected', 'filled', 'shipped', 'delivered', 'cancelled')", name="status_known"
        ),
        CheckConstraint("first_session >= 1 AND last_session >= first_session AND units > 0", name="numbers_valid"),
        Index("uq_plan_batch_sequence", "plan_id", "sequence", unique=True),
        Index("ix_plan_batch_queue", "status", "updated_at"),
    )

    id: uuid.UUID = uuid_primary_key()
    plan_id: uuid.UUID = _fk("troche_plan", index=False)
    sequence: int
    first_session: int
    last_session: int
    units: int
    status: str = Field(max_length=20)
    release_override_reason: str | None = Field(default=None, max_length=1000)
    rejected_reason: str | None = Field(default=None, max_length=1000)
    lot_number: str | None = Field(default=None, max_length=60)
    beyond_use_date: date | None = None
    units_filled: int | None = None
    carrier: str | None = Field(default=None, max_length=60)
    tracking_number: str | None = Field(default=None, max_length=100)
    signature_required: bool = True
    shipped_at: datetime | None = utc_timestamp(nullable=True)
    delivered_at: datetime | None = utc_timestamp(nullable=True)
    updated_at: datetime = utc_timestamp()


class ReassessmentAnswer(SQLModel, table=True):
    """A reassessment's questionnaires were answered: once per plan and checkpoint (the session count at
    which it fell due), which the primary key makes certain."""

    __tablename__ = "reassessment_answer"

    plan_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("troche_plan.id", ondelete="CASCADE"), primary_key=True))
    checkpoint: int = Field(primary_key=True)
    patient_id: uuid.UUID = _fk("patient")
    answered_at: datetime = utc_timestamp()
