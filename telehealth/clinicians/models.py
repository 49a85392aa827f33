"""Clinician profiles, state licenses and DEA registrations."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, UniqueConstraint, Uuid
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key


class ClinicianProfile(SQLModel, table=True):
    __tablename__ = "clinician_profile"

    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True))
    npi: str | None = Field(default=None, max_length=10)
    timezone: str = Field(default="America/New_York", max_length=64)
    created_at: datetime = utc_timestamp(default_now=True)


class StateLicense(SQLModel, table=True):
    __tablename__ = "state_license"
    __table_args__ = (UniqueConstraint("clinician_id", "state", "license_type"),)

    id: uuid.UUID = uuid_primary_key()
    clinician_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True))
    state: str = Field(max_length=2, index=True)
    number: str = Field(max_length=40)
    license_type: str = Field(max_length=20)  # MD, DO, NP, PA, LPC, LCSW, PsyD ...
    expires_on: date
    # The expiry the holder was last reminded of: a renewal changes expires_on, which re-arms the reminder.
    reminded_for_expiry: date | None = None


class DeaRegistration(SQLModel, table=True):
    __tablename__ = "dea_registration"
    __table_args__ = (UniqueConstraint("clinician_id", "state"),)

    id: uuid.UUID = uuid_primary_key()
    clinician_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True))
    state: str = Field(max_length=2, index=True)
    number: str = Field(max_length=9)
    schedules: str = Field(max_length=40)  # e.g. "II,IIN,III,IIIN,IV,V"
    expires_on: date
    reminded_for_expiry: date | None = None  # as on state_license


class SpecialRegistration(SQLModel, table=True):
    """A prescriber's DEA telemedicine special registration in a state: after the telemedicine flexibilities
    end it lets them prescribe to a patient there without an in-person evaluation (prescribing.basis)."""

    __tablename__ = "special_registration"
    __table_args__ = (UniqueConstraint("clinician_id", "state"),)

    id: uuid.UUID = uuid_primary_key()
    # No index of its own: the unique constraint's index starts with clinician_id.
    clinician_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False))
    state: str = Field(max_length=2)
    number: str = Field(max_length=40)
    expires_on: date
    reminded_for_expiry: date | None = None  # as on state_license
