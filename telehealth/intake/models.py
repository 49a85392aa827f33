"""Intake answers (saved step by step), questionnaire responses, signed consents, screening decisions and
escalations. Health data lives here and nowhere else: never in email, logs or URLs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Text, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key
from telehealth.intake.states import EscalationStatus, IntakeStatus


def _patient_fk() -> Any:
    return Field(sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), nullable=False, index=True))


class Intake(SQLModel, table=True):
    __tablename__ = "intake"
    __table_args__ = (
        CheckConstraint("status IN ('in_progress', 'submitted')", name="status_known"),
        # One intake in progress per patient (a reassessment later starts a new one).
        Index("uq_intake_in_progress", "patient_id", unique=True, postgresql_where=text("status = 'in_progress'")),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _patient_fk()
    status: str = Field(default=IntakeStatus.IN_PROGRESS, max_length=20)
    started_at: datetime = utc_timestamp()
    submitted_at: datetime | None = utc_timestamp(nullable=True)
    # Every suicide-risk finding seen while the patient answered, kept even if the answer is changed
    # before submission: a prescriber must still see it.
    risk_reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]"))


class IntakeSection(SQLModel, table=True):
    """One step's answers, validated, saved as the patient goes (they can stop and come back)."""

    __tablename__ = "intake_section"

    intake_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("intake.id", ondelete="CASCADE"), primary_key=True))
    section: str = Field(max_length=40, primary_key=True)
    answers: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    saved_at: datetime = utc_timestamp()


class QuestionnaireResponse(SQLModel, table=True):
    """A completed PHQ-9, GAD-7 or C-SSRS, with the questionnaire version it was answered on."""

    __tablename__ = "questionnaire_response"

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _patient_fk()
    intake_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, ForeignKey("intake.id", ondelete="SET NULL")))
    questionnaire: str = Field(max_length=20)
    version: str = Field(max_length=40)
    answers: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    score: int
    band: str | None = Field(default=None, max_length=40)
    answered_at: datetime = utc_timestamp()


class ConsentSignature(SQLModel, table=True):
    """An electronic signature of one version of one consent document."""

    __tablename__ = "consent_signature"
    __table_args__ = (UniqueConstraint("patient_id", "document", "version"),)

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _patient_fk()
    document: str = Field(max_length=60)
    version: str = Field(max_length=40)
    content_sha256: str = Field(max_length=64)
    typed_name: str = Field(max_length=200)
    signed_at: datetime = utc_timestamp()
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=400)


class ScreeningDecision(SQLModel, table=True):
    """What the rules decided for a submitted intake, with every reason (rule id, texts, evidence)."""

    __tablename__ = "screening_decision"
    __table_args__ = (CheckConstraint("outcome IN ('eligible', 'needs_review', 'ineligible')", name="outcome_known"),)

    id: uuid.UUID = uuid_primary_key()
    intake_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("intake.id", ondelete="CASCADE"), nullable=False, unique=True))
    patient_id: uuid.UUID = _patient_fk()
    outcome: str = Field(max_length=20)
    crisis: bool = False
    reasons: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    screened_at: datetime = utc_timestamp()


class Escalation(SQLModel, table=True):
    """Something a clinician must act on: a crisis (a crisis answer; while one is open the patient cannot book
    by themselves) or a contact request (a check-in's PHQ-9 item 9 of 1 or 2; while one is open no dose
    unlocks). Contact recorded by a clinician closes either."""

    __tablename__ = "escalation"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'contact_recorded')", name="status_known"),
        CheckConstraint("kind IN ('crisis', 'contact')", name="kind_known"),
        Index("uq_escalation_open_kind", "patient_id", "kind", unique=True, postgresql_where=text("status = 'open'")),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _patient_fk()
    kind: str = Field(max_length=20)
    status: str = Field(default=EscalationStatus.OPEN, max_length=20)
    rule_ids: str = Field(max_length=300)  # the crisis rules that fired, comma separated
    opened_at: datetime = utc_timestamp()
    contact_recorded_at: datetime | None = utc_timestamp(nullable=True)
    contact_recorded_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    )
    contact_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
