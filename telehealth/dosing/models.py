"""Sitters and their links, dosing sessions with their check-ins, sitter attestations and reports, serious
events awaiting a prescriber's review, and inventory flags."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key


def _fk(table: str, *, nullable: bool = False, index: bool = True, ondelete: str = "RESTRICT") -> Any:
    return Field(sa_column=Column(Uuid, ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable, index=index))


class Sitter(SQLModel, table=True):
    """A monitor the patient names. No account: they act through links of their own, and sign the sitter
    agreement like a consent (version, SHA-256 of the text they saw, typed name, time, IP, user agent). A
    coordinator then verifies them by a short call (method, time, who) before their first session."""

    __tablename__ = "sitter"
    __table_args__ = (
        CheckConstraint("status IN ('invited', 'confirmed', 'declined', 'removed', 'withdrawn')", name="status_known"),
        CheckConstraint(
            "status <> 'confirmed' OR (signed_at IS NOT NULL AND agreement_sha256 IS NOT NULL AND adult_confirmed)", name="confirmed_signed"
        ),
        CheckConstraint("verification_method IS NULL OR verification_method IN ('video', 'phone')", name="verification_method_known"),
        # A verification is whole: when, how and by whom together, or none of them.
        CheckConstraint(
            "(verified_at IS NULL) = (verified_by IS NULL) AND (verified_at IS NULL) = (verification_method IS NULL)",
            name="verification_whole",
        ),
        # The same person is named once per patient while invited or confirmed.
        Index(
            "uq_sitter_active_email",
            "patient_id",
            text("lower(email)"),
            unique=True,
            postgresql_where=text("status IN ('invited', 'confirmed')"),
        ),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = _fk("patient")
    status: str = Field(max_length=20)
    full_name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    relationship: str = Field(max_length=100)
    adult_confirmed: bool = False
    agreement_version: str | None = Field(default=None, max_length=40)
    agreement_sha256: str | None = Field(default=None, max_length=64)
    typed_name: str | None = Field(default=None, max_length=200)
    signed_at: datetime | None = utc_timestamp(nullable=True)
    signed_ip: str | None = Field(default=None, max_length=64)
    signed_user_agent: str | None = Field(default=None, max_length=400)
    verified_at: datetime | None = utc_timestamp(nullable=True)
    verified_by: uuid.UUID | None = _fk("user_account", nullable=True, index=False)
    verification_method: str | None = Field(default=None, max_length=10)  # video | phone
    verification_note: str | None = Field(default=None, max_length=1000)
    created_at: datetime = utc_timestamp()
    updated_at: datetime = utc_timestamp()


class SitterLink(SQLModel, table=True):
    """A link that lets one sitter do one thing: stored as the SHA-256 of its token, expiring, spent once,
    revocable."""

    __tablename__ = "sitter_link"
    __table_args__ = (
        CheckConstraint("purpose IN ('agreement', 'presence', 'end', 'excuse')", name="purpose_known"),
        CheckConstraint("purpose = 'agreement' OR dosing_session_id IS NOT NULL", name="session_links_name_a_session"),
    )

    token_hash: str = Field(max_length=64, primary_key=True)
    sitter_id: uuid.UUID = _fk("sitter", ondelete="CASCADE")
    purpose: str = Field(max_length=20)
    dosing_session_id: uuid.UUID | None = _fk("dosing_session", nullable=True, ondelete="CASCADE")
    created_at: datetime = utc_timestamp()
    expires_at: datetime = utc_timestamp()
    used_at: datetime | None = utc_timestamp(nullable=True)
    revoked_at: datetime | None = utc_timestamp(nullable=True)


class DosingSession(SQLModel, table=True):
    """One home session of a plan: its number (which dose), the time, the sitter, and where it stands."""

    __tablename__ = "dosing_session"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'unlocked', 'reported', 'held', 'cancelled')", name="status_known"),
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint("status NOT IN ('unlocked', 'reported') OR unlocked_at IS NOT NULL", name="unlocked_has_time"),
        # Each dose of the plan is taken once; held or cancelled sessions free their number.
        Index(
            "uq_dosing_session_number",
            "plan_id",
            "number",
            unique=True,
            postgresql_where=text("status IN ('scheduled', 'unlocked', 'reported')"),
        ),
        # One session waits to be taken at a time: the next is scheduled after the last one.
        Index("uq_dosing_session_one_scheduled", "plan_id", unique=True, postgresql_where=text("status = 'scheduled'")),
        Index("ix_dosing_session_due", "status", "scheduled_at"),
    )

    id: uuid.UUID = uuid_primary_key()
    plan_id: uuid.UUID = _fk("troche_plan")
    patient_id: uuid.UUID = _fk("patient")
    sitter_id: uuid.UUID | None = _fk("sitter", nullable=True)
    number: int
    status: str = Field(max_length=20)
    scheduled_at: datetime = utc_timestamp()
    unlocked_at: datetime | None = utc_timestamp(nullable=True)
    held_reason: str | None = Field(default=None, max_length=40)
    ics_sequence: int = 0
    report_reminded_at: datetime | None = utc_timestamp(nullable=True)  # the patient was reminded (once)
    report_escalated_at: datetime | None = utc_timestamp(nullable=True)  # the coordinators were alerted (once)
    end_link_sent_at: datetime | None = utc_timestamp(nullable=True)  # the sitter was emailed the end link when the window closed (once)
    created_at: datetime = utc_timestamp()
    updated_at: datetime = utc_timestamp()


class CheckIn(SQLModel, table=True):
    """The patient's answers in the hour before the dose. Attempt 2 is the one re-check after a high BP."""

    __tablename__ = "dosing_check_in"
    __table_args__ = (
        CheckConstraint("attempt IN (1, 2)", name="attempt_known"),
        CheckConstraint(
            "systolic BETWEEN 50 AND 300 AND diastolic BETWEEN 20 AND 200 AND pulse BETWEEN 20 AND 250", name="vitals_plausible"
        ),
        CheckConstraint("mood BETWEEN 0 AND 10 AND phq9_item9 BETWEEN 0 AND 3", name="scores_in_range"),
        Index("uq_dosing_check_in_attempt", "dosing_session_id", "attempt", unique=True),
    )

    id: uuid.UUID = uuid_primary_key()
    dosing_session_id: uuid.UUID = _fk("dosing_session", index=False, ondelete="CASCADE")
    attempt: int
    systolic: int
    diastolic: int
    pulse: int
    mood: int
    phq9_item9: int
    fasted_two_hours: bool
    no_alcohol_or_sedatives: bool
    checked_in_at: datetime = utc_timestamp()


class SitterAttestation(SQLModel, table=True):
    """The sitter's word, through their own link: present before the dose, and how the session ended."""

    __tablename__ = "sitter_attestation"
    __table_args__ = (
        CheckConstraint("kind IN ('presence', 'end')", name="kind_known"),
        CheckConstraint("kind = 'presence' OR outcome IN ('alert_and_safe', 'event')", name="end_has_outcome"),
        CheckConstraint("kind = 'end' OR NOT ended_early", name="only_an_end_ends_early"),
        CheckConstraint("ended_early OR ended_early_reason IS NULL", name="reason_only_when_ended_early"),
        CheckConstraint("same_as_patient IS NULL OR same_as_patient IN ('address', 'device')", name="same_as_patient_known"),
        Index("uq_sitter_attestation_kind", "dosing_session_id", "kind", unique=True),
    )

    id: uuid.UUID = uuid_primary_key()
    dosing_session_id: uuid.UUID = _fk("dosing_session", index=False, ondelete="CASCADE")
    sitter_id: uuid.UUID = _fk("sitter")
    kind: str = Field(max_length=20)
    typed_name: str = Field(max_length=200)
    outcome: str | None = Field(default=None, max_length=20)
    event_description: str | None = Field(default=None, max_length=2000)
    emergency_services_called: bool = False
    # An end attested before the observation window closed, and why (an event's description can stand for the reason).
    ended_early: bool = False
    ended_early_reason: str | None = Field(default=None, max_length=1000)
    attested_at: datetime = utc_timestamp()
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=400)
    # Sent from where the patient acted in the day before: their address, or their address and browser
    # (sitter_checks.same_as_patient). A flag for the prescriber, not a refusal: a sitter at the
    # patient's home is often on the same network.
    same_as_patient: str | None = Field(default=None, max_length=10)


class DosingReport(SQLModel, table=True):
    """The patient's report after the session (one per session)."""

    __tablename__ = "dosing_report"
    __table_args__ = (
        CheckConstraint("troches_used BETWEEN 0 AND 100", name="troches_in_range"),
        CheckConstraint("dissociation BETWEEN 0 AND 10", name="dissociation_in_range"),
        CheckConstraint("(systolic IS NULL) = (diastolic IS NULL)", name="bp_both_or_neither"),
        CheckConstraint("ended_early OR ended_early_reason IS NULL", name="reason_only_when_ended_early"),
    )

    dosing_session_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("dosing_session.id", ondelete="CASCADE"), primary_key=True))
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
    other_side_effects: str | None = Field(default=None, max_length=1000)
    systolic: int | None = None
    diastolic: int | None = None
    notes: str | None = Field(default=None, max_length=4000)
    # Reported before the observation window closed, and why (a serious answer can stand for the reason).
    ended_early: bool = False
    ended_early_reason: str | None = Field(default=None, max_length=1000)
    reported_at: datetime = utc_timestamp()


class SeriousEvent(SQLModel, table=True):
    """A serious adverse event: it paused the plan, and stays open until a prescriber reviews it."""

    __tablename__ = "serious_event"
    __table_args__ = (
        CheckConstraint("source IN ('check_in', 'report', 'sitter')", name="source_known"),
        CheckConstraint("review_decision IS NULL OR review_decision IN ('resume', 'discontinue')", name="decision_known"),
        CheckConstraint("(reviewed_at IS NULL) = (review_note IS NULL)", name="review_has_note"),
        Index("ix_serious_event_open", "plan_id", postgresql_where=text("reviewed_at IS NULL")),
    )

    id: uuid.UUID = uuid_primary_key()
    plan_id: uuid.UUID = _fk("troche_plan", index=False)
    patient_id: uuid.UUID = _fk("patient")
    dosing_session_id: uuid.UUID | None = _fk("dosing_session", nullable=True, index=False)
    source: str = Field(max_length=20)
    reasons: list[str] = Field(sa_column=Column(JSONB, nullable=False))  # codes, e.g. ["fainting", "emergency_services_called"]
    occurred_at: datetime = utc_timestamp()
    reviewed_at: datetime | None = utc_timestamp(nullable=True)
    reviewed_by: uuid.UUID | None = _fk("user_account", nullable=True, index=False)
    review_note: str | None = Field(default=None, max_length=4000)
    review_decision: str | None = Field(default=None, max_length=20)


class InventoryFlag(SQLModel, table=True):
    """Diversion control: something about the troches the prescriber should look at."""

    __tablename__ = "inventory_flag"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('loss_reported', 'count_below_zero', 'more_than_prescribed', 'fewer_than_prescribed', 'early_batch_request')",
            name="kind_known",
        ),
        CheckConstraint("(resolved_at IS NULL) = (resolution_note IS NULL)", name="resolution_has_note"),
        Index("ix_inventory_flag_open", "plan_id", postgresql_where=text("resolved_at IS NULL")),
    )

    id: uuid.UUID = uuid_primary_key()
    plan_id: uuid.UUID = _fk("troche_plan", index=False)
    patient_id: uuid.UUID = _fk("patient")
    kind: str = Field(max_length=30)
    troches: int = 0  # lost, over the count, used beyond or short of the prescription, as the kind says
    detail: str | None = Field(default=None, max_length=1000)
    raised_at: datetime = utc_timestamp()
    resolved_at: datetime | None = utc_timestamp(nullable=True)
    resolved_by: uuid.UUID | None = _fk("user_account", nullable=True, index=False)
    resolution_note: str | None = Field(default=None, max_length=2000)
