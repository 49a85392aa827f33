"""Accounts, patient profiles, care teams, server-side sessions, single-use tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Text, Uuid, text
from sqlmodel import Field

from telehealth.accounts.roles import Role
from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key

ROLE_VALUES = ", ".join(f"'{role.value}'" for role in Role)


class UserAccount(SQLModel, table=True):
    __tablename__ = "user_account"
    __table_args__ = (CheckConstraint(f"role IN ({ROLE_VALUES})", name="role_known"),)

    id: uuid.UUID = uuid_primary_key()
    email: str = Field(max_length=254, unique=True)  # stored lower-cased
    full_name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    is_active: bool = True
    email_verified_at: datetime | None = utc_timestamp(nullable=True)
    totp_secret: str | None = Field(default=None, max_length=200)  # AES-GCM sealed (accounts/totp_secrets.py)
    totp_confirmed_at: datetime | None = utc_timestamp(nullable=True)
    totp_last_used_step: int | None = None  # a code is accepted once, never replayed
    # Wrong passwords at signing only (a signed-in session): wrong passwords at sign-in are throttled apart
    # (throttle.py) and wrong codes counted apart (two_factor.py); neither sets the lock.
    failed_login_count: int = 0
    locked_until: datetime | None = utc_timestamp(nullable=True)
    two_factor_locked_until: datetime | None = utc_timestamp(nullable=True)  # no code is checked before then
    created_at: datetime = utc_timestamp(default_now=True)


class Patient(SQLModel, table=True):
    """The patient record every clinical area hangs off; one per patient account."""

    __tablename__ = "patient"

    id: uuid.UUID = uuid_primary_key()
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="RESTRICT"), nullable=False, unique=True))
    timezone: str = Field(default="America/New_York", max_length=64)
    state_of_residence: str | None = Field(default=None, max_length=2)
    created_at: datetime = utc_timestamp(default_now=True)


class CareTeamMember(SQLModel, table=True):
    """A clinician on a patient's care team, with its history: why and when they joined (a booked consult or
    integration session, a signed plan, a coordinator's assignment) and when and why they left. Only a
    current member (left_at NULL, one row per clinician) reads the patient's clinical detail."""

    __tablename__ = "care_team_member"
    __table_args__ = (
        CheckConstraint(
            "joined_because IN ('seed', 'consult_booked', 'integration_booked', 'plan_signed', 'assigned')", name="joined_because_known"
        ),
        CheckConstraint("(left_at IS NULL) = (left_because IS NULL)", name="left_with_reason"),
        Index("uq_care_team_member_current", "patient_id", "clinician_id", unique=True, postgresql_where=text("left_at IS NULL")),
    )

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), nullable=False))
    clinician_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True))
    added_at: datetime = utc_timestamp(default_now=True)
    joined_because: str = Field(default="assigned", max_length=20)
    added_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    )
    left_at: datetime | None = utc_timestamp(nullable=True)
    left_because: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    left_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    )


class BreakGlassGrant(SQLModel, table=True):
    """A clinician outside the care team reading a patient's record for an urgent, stated reason, until
    `expires_at`; the care team is told and a coordinator reviews it."""

    __tablename__ = "break_glass_grant"
    __table_args__ = (CheckConstraint("expires_at > granted_at", name="expires_after_grant"),)

    id: uuid.UUID = uuid_primary_key()
    patient_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), nullable=False, index=True))
    clinician_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="RESTRICT"), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    granted_at: datetime = utc_timestamp()
    expires_at: datetime = utc_timestamp()
    reviewed_at: datetime | None = utc_timestamp(nullable=True)
    reviewed_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    )
    review_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class UserSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "user_session"

    id: uuid.UUID = uuid_primary_key()
    token_hash: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True))
    created_at: datetime = utc_timestamp(default_now=True)
    last_seen_at: datetime = utc_timestamp(default_now=True)
    expires_at: datetime = utc_timestamp()  # the absolute limit
    two_factor_verified_at: datetime | None = utc_timestamp(nullable=True)
    step_up_at: datetime | None = utc_timestamp(nullable=True)
    revoked_at: datetime | None = utc_timestamp(nullable=True)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=400)


class AccountToken(SQLModel, table=True):
    """Single-use links: email verification and password reset. Stored hashed; `used_at` spends it."""

    __tablename__ = "account_token"
    __table_args__ = (CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="purpose_known"),)

    id: uuid.UUID = uuid_primary_key()
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True))
    purpose: str = Field(max_length=32)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = utc_timestamp(default_now=True)
    expires_at: datetime = utc_timestamp()
    used_at: datetime | None = utc_timestamp(nullable=True)
