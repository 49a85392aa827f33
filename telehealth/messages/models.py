"""One conversation per patient with their care team: each message, who wrote it, and when."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Text, Uuid
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key


class CareMessage(SQLModel, table=True):
    __tablename__ = "care_message"
    __table_args__ = (
        CheckConstraint("length(body) BETWEEN 1 AND 4000", name="body_length"),
        CheckConstraint("author_role IN ('patient', 'prescriber', 'therapist', 'coordinator')", name="author_role_known"),
        Index("ix_care_message_thread", "patient_id", "sent_at"),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), nullable=False))
    author_user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="RESTRICT"), nullable=False))
    author_role: str = Field(max_length=20)
    body: str = Field(sa_column=Column(Text, nullable=False))
    sent_at: datetime = utc_timestamp()
