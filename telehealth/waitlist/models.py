"""waitlist_entry (one per person; anonymised, never deleted, when they leave) and waitlist_invitation."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Text, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key
from telehealth.waitlist.states import EntryStatus, InvitationStatus

# Literal (not bound) statuses, so even a cached generic plan can use the partial indexes below.
IS_WAITING = text("waitlist_entry.status = 'waiting'")
IS_LIVE_INVITATION = text("waitlist_invitation.status = 'sent'")
ENTRY_STATUSES = ", ".join(f"'{status.value}'" for status in EntryStatus)
INVITATION_STATUSES = ", ".join(f"'{status.value}'" for status in InvitationStatus)


class WaitlistEntry(SQLModel, table=True):
    __tablename__ = "waitlist_entry"
    __table_args__ = (
        CheckConstraint(f"status IN ({ENTRY_STATUSES})", name="status_known"),
        # One entry per address among people still on the list (erased entries have no address).
        Index("uq_waitlist_entry_email", "email", unique=True, postgresql_where=text("email IS NOT NULL")),
        # The queue of a state, in order: position is a count over this index.
        Index("ix_waitlist_entry_queue", "state", "confirmed_at", "id", postgresql_where=text("status = 'waiting'")),
        Index("ix_waitlist_entry_state_status", "state", "status"),
    )

    id: uuid.UUID = uuid_primary_key()
    status: str = Field(default=EntryStatus.UNCONFIRMED, max_length=20)
    state: str = Field(max_length=2)  # kept after erasure so the counts stay right
    # Personal data: all set to NULL when the person leaves the list.
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=254)
    date_of_birth: date | None = None
    phone: str | None = Field(default=None, max_length=16)
    conditions: list[str] | None = Field(default=None, sa_column=Column(ARRAY(Text), nullable=True))
    consent_to_contact: bool = False
    joined_at: datetime = utc_timestamp()
    confirmed_at: datetime | None = utc_timestamp(nullable=True)  # the queue order
    left_at: datetime | None = utc_timestamp(nullable=True)
    note: str | None = Field(default=None, max_length=300)  # e.g. why an invitation lapsed
    patient_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="SET NULL"), nullable=True)
    )


class WaitlistInvitation(SQLModel, table=True):
    __tablename__ = "waitlist_invitation"
    __table_args__ = (
        CheckConstraint(f"status IN ({INVITATION_STATUSES})", name="status_known"),
        # A person holds at most one live invitation, whatever races happen.
        Index("uq_waitlist_invitation_live_entry", "entry_id", unique=True, postgresql_where=text("status = 'sent'")),
        Index("ix_waitlist_invitation_state_created_at", "state", "created_at"),
        Index("ix_waitlist_invitation_due", "expires_at", postgresql_where=text("status = 'sent'")),
    )

    id: uuid.UUID = uuid_primary_key()
    entry_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("waitlist_entry.id", ondelete="CASCADE"), nullable=False))
    state: str = Field(max_length=2)
    status: str = Field(default=InvitationStatus.SENT, max_length=20)
    invited_by_user_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    )  # None: the system (an expired invitation moving on)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_at: datetime = utc_timestamp()
    expires_at: datetime = utc_timestamp()
    accepted_at: datetime | None = utc_timestamp(nullable=True)


class WaitlistLink(SQLModel, table=True):
    """A private link to one entry's status page, one per email sent (each email's link keeps working).
    Stored hashed; all of an entry's links are deleted when the person leaves."""

    __tablename__ = "waitlist_link"

    token_hash: str = Field(max_length=64, primary_key=True)
    entry_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("waitlist_entry.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = utc_timestamp()
