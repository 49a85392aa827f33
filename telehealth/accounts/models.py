"""Accounts, patient profiles, care teams, server-side sessions, single-use tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Uuid
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key
from telehealth.accounts.roles import Role

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
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_confirmed_at: datetime | None = utc_timestamp(nullable=True)
    totp_last_used_step: int | None = None  # a code is accepted once, never replayed
    failed_login_count: int = 0
    locked_until: datetime | None = utc_timestamp(nullable=True)
    created_at: datetime = utc_timestamp(default_now=True)


class Patient(SQLModel, table=True):
    """The patient record every clinical area hangs off; one per patient account."""

    __tablename__ = "patient"

    id: uuid.UUID = uuid_primary_key()
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="RESTRICT"), nullable=False, unique=True)
    )
    timezone: str = Field(default="America/New_York", max_length=64)
    state_of_residence: str | None = Field(default=None, max_length=2)
    created_at: datetime = utc_timestamp(default_now=True)


class CareTeamMember(SQLModel, table=True):
    """A clinician assigned to a patient; therapists see only patients they are assigned to."""

    __tablename__ = "care_team_member"

    patient_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True)
    )
    clinician_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    )
    added_at: datetime = utc_timestamp(default_now=True)


class UserSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "user_session"

    id: uuid.UUID = uuid_primary_key()
    token_hash: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True)
    )
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
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="purpose_known"),
    )

    id: uuid.UUID = uuid_primary_key()
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    purpose: str = Field(max_length=32)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = utc_timestamp(default_now=True)
    expires_at: datetime = utc_timestamp()
    used_at: datetime | None = utc_timestamp(nullable=True)
