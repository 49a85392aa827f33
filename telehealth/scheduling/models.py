"""Clinician hours (weekly, in their zone), date overrides, per-type settings, and appointments.

Two exclusion constraints make double booking impossible, whatever the application does:
one clinician's busy ranges (with buffers) never overlap, and one patient's appointments never overlap,
among appointments that occupy time (held or booked).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, ForeignKey, Index, Uuid, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key

OCCUPYING_SQL = "status IN ('held', 'booked')"
MAX_BUSY_SPAN = timedelta(days=1)  # no appointment with its buffers lasts longer (a check constraint; the settings allow 8 h)


def _clinician_fk(primary_key: bool = False) -> Any:  # a Field(...), which SQLModel types as Any
    return Field(
        sa_column=Column(
            Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=not primary_key, primary_key=primary_key
        )
    )


class WeeklyHours(SQLModel, table=True):
    __tablename__ = "weekly_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_valid"),
        CheckConstraint("starts_at_local < ends_at_local", name="range_valid"),
    )

    id: uuid.UUID = uuid_primary_key()
    clinician_id: uuid.UUID = _clinician_fk()
    weekday: int  # Monday 0 .. Sunday 6
    starts_at_local: time
    ends_at_local: time


class DateOverride(SQLModel, table=True):
    """A day off, or extra hours on one date (local to the clinician)."""

    __tablename__ = "date_override"
    __table_args__ = (
        CheckConstraint("kind IN ('off', 'extra')", name="kind_known"),
        CheckConstraint(
            "(kind = 'off' AND starts_at_local IS NULL AND ends_at_local IS NULL) OR (kind = 'extra' AND starts_at_local < ends_at_local)",
            name="hours_match_kind",
        ),
    )

    id: uuid.UUID = uuid_primary_key()
    clinician_id: uuid.UUID = _clinician_fk()
    on_date: date
    kind: str = Field(max_length=10)
    starts_at_local: time | None = None
    ends_at_local: time | None = None


class AppointmentTypeSettings(SQLModel, table=True):
    """A clinician's settings for one appointment type; missing rows take the clinic defaults."""

    __tablename__ = "appointment_type_settings"

    clinician_id: uuid.UUID = _clinician_fk(primary_key=True)
    appointment_type: str = Field(max_length=20, primary_key=True)
    duration_minutes: int
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    minimum_notice_minutes: int = 720
    horizon_days: int = 30
    max_per_day: int | None = None
    step_minutes: int = 15


class Appointment(SQLModel, table=True):
    __tablename__ = "appointment"
    __table_args__ = (
        CheckConstraint("appointment_type IN ('consult', 'reassessment', 'integration')", name="type_known"),
        CheckConstraint("status IN ('held', 'booked', 'completed', 'cancelled', 'no_show', 'expired')", name="status_known"),
        CheckConstraint("starts_at < ends_at AND busy_from <= starts_at AND busy_until >= ends_at", name="times_valid"),
        CheckConstraint("status <> 'held' OR hold_expires_at IS NOT NULL", name="held_expires"),
        # The longest busy span the settings allow is 8 hours (240 minutes and two buffers of 120); the bound
        # lets a search find spans overlapping a window by their start alone (ix_..._busy_from, calendars.py).
        CheckConstraint(f"busy_until - busy_from <= interval '{MAX_BUSY_SPAN.days} day'", name="busy_within_a_day"),
        ExcludeConstraint(
            (Column("clinician_id"), "="),
            (text("tstzrange(busy_from, busy_until, '[)')"), "&&"),
            using="gist",
            where=text(OCCUPYING_SQL),
            name="ex_appointment_clinician_busy",
        ),
        ExcludeConstraint(
            (Column("patient_id"), "="),
            (text("tstzrange(starts_at, ends_at, '[)')"), "&&"),
            using="gist",
            where=text(OCCUPYING_SQL),
            name="ex_appointment_patient_busy",
        ),
        Index("ix_appointment_hold_expiry", "hold_expires_at", postgresql_where=text("status = 'held'")),
        Index("ix_appointment_clinician_starts_at", "clinician_id", "starts_at"),
        # A slot search's busy spans for hundreds of clinicians: one btree descent each, where the exclusion
        # constraint's GiST index took several times as long for the same `clinician_id = ANY(...)`.
        Index(
            "ix_appointment_occupying_busy_from",
            "clinician_id",
            "busy_from",
            postgresql_include=["busy_until"],
            postgresql_where=text(OCCUPYING_SQL),
        ),
    )

    id: uuid.UUID = uuid_primary_key()
    appointment_type: str = Field(max_length=20)
    clinician_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="RESTRICT"), nullable=False))
    patient_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), nullable=False, index=True))
    status: str = Field(max_length=20)
    starts_at: datetime = utc_timestamp()
    ends_at: datetime = utc_timestamp()
    busy_from: datetime = utc_timestamp()  # starts_at minus the buffer before
    busy_until: datetime = utc_timestamp()  # ends_at plus the buffer after
    hold_expires_at: datetime | None = utc_timestamp(nullable=True)
    room_token: str = Field(max_length=64, unique=True)  # the video room: unguessable, never the id
    ics_sequence: int = 0  # raised on every reschedule (RFC 5545 SEQUENCE)
    created_at: datetime = utc_timestamp()
    cancelled_at: datetime | None = utc_timestamp(nullable=True)


class CalendarVersion(SQLModel, table=True):
    """One row, written only by triggers (migration 0017): n goes up in the transaction of every change to
    what a slot search's roster is made of (hours, overrides, type settings, licences, DEA registrations, a
    clinician's zone, name, role or activity), so app processes know when the roster they keep is out of
    date (scheduling/roster.py). The token is new in every database the migration makes."""

    __tablename__ = "calendar_version"
    __table_args__ = (CheckConstraint("only_row", name="one_row"),)

    only_row: bool = Field(sa_column=Column(Boolean, primary_key=True, server_default=text("true")))
    token: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False, server_default=text("gen_random_uuid()")))
    n: int = Field(sa_column=Column(BigInteger, nullable=False, server_default=text("0")))


class VideoVisit(SQLModel, table=True):
    """The visit an appointment became. It *started* when both people were connected in the built-in room
    (`both_connected`), or, with an external video service, when the clinician attested an audio-video visit
    inside the join window (`clinician_attested`). Prescribing follows it (prescribing/encounters.py)."""

    __tablename__ = "video_visit"
    __table_args__ = (
        CheckConstraint("modality IN ('audio_video')", name="modality_known"),
        CheckConstraint("start_evidence IN ('both_connected', 'clinician_attested')", name="evidence_known"),
        CheckConstraint("start_evidence <> 'clinician_attested' OR attested_by IS NOT NULL", name="attestation_has_author"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
    )

    appointment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("appointment.id", ondelete="CASCADE"), primary_key=True))
    modality: str = Field(default="audio_video", max_length=20)
    started_at: datetime = utc_timestamp()
    start_evidence: str = Field(max_length=30)
    attested_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="RESTRICT"), nullable=True)
    )
    ended_at: datetime | None = utc_timestamp(nullable=True)  # the last leave after the start (a rejoin moves it)


class VisitConnection(SQLModel, table=True):
    """One person's time in the built-in room: who joined and left, when. A process that died mid-call
    leaves `left_at` empty; the visit's start never relies on these rows (see video_visit)."""

    __tablename__ = "visit_connection"
    __table_args__ = (
        CheckConstraint("participant IN ('patient', 'clinician')", name="participant_known"),
        CheckConstraint("left_at IS NULL OR left_at >= joined_at", name="leaves_after_join"),
    )

    id: uuid.UUID = uuid_primary_key()
    appointment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("appointment.id", ondelete="CASCADE"), nullable=False, index=True))
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False))
    participant: str = Field(max_length=20)
    joined_at: datetime = utc_timestamp()
    left_at: datetime | None = utc_timestamp(nullable=True)
