"""A clinical note: written once, never edited (a correction is a new note), read by the care team."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Text, Uuid
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key


class ClinicalNote(SQLModel, table=True):
    __tablename__ = "clinical_note"
    __table_args__ = (
        CheckConstraint("length(body) BETWEEN 1 AND 8000", name="body_length"),
        CheckConstraint("kind IN ('shared', 'psychotherapy')", name="kind_known"),
        Index("ix_clinical_note_patient", "patient_id", "written_at"),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), nullable=False))
    author_user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="RESTRICT"), nullable=False))
    appointment_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, ForeignKey("appointment.id", ondelete="SET NULL")))
    body: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(default="shared", max_length=20)  # psychotherapy: the author's alone; shared: the care team's
    written_at: datetime = utc_timestamp()
