"""waitlist_entry (one per person; anonymised, never deleted, when they leave), waitlist_invitation, and
waitlist_tally (how many wait per state and day, kept by the database for positions)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, Text, Uuid, func, literal_column, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp, uuid_primary_key
from telehealth.db.types import UTCDateTime
from telehealth.waitlist.states import EntryStatus, InvitationStatus

# Literal (not bound) statuses, so even a cached generic plan can use the partial indexes below.
IS_WAITING = text("waitlist_entry.status = 'waiting'")
IS_LIVE_INVITATION = text("waitlist_invitation.status = 'sent'")
ENTRY_STATUSES = ", ".join(f"'{status.value}'" for status in EntryStatus)
INVITATION_STATUSES = ", ".join(f"'{status.value}'" for status in InvitationStatus)


# A day: a position reads the state's rows (about 365 for a year of queue) and counts the entries of one day.
# An hour was tried first: 8,760 rows a year per state, scattered over the table's pages, made the sum the
# dearest part (7.9 ms for 1,000,000 waiting, against 0.9 ms to count a day of 2,500; docs/benchmarks.md).
TALLY_BUCKET_WIDTH = "1 day"
TALLY_BUCKET_ORIGIN = "2000-01-01 00:00:00+00"


def tally_bucket(moment: Any) -> Any:
    """The day (UTC) a waiting entry is counted in by waitlist_tally, as SQL: the triggers of migration 0016
    use the same expression. date_bin is immutable, so a plan folds it for a parameter."""
    return func.date_bin(literal_column(f"INTERVAL '{TALLY_BUCKET_WIDTH}'"), moment, literal_column(f"TIMESTAMPTZ '{TALLY_BUCKET_ORIGIN}'"))


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
    patient_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, ForeignKey("patient.id", ondelete="SET NULL"), nullable=True))


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
    entry_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("waitlist_entry.id", ondelete="CASCADE"), nullable=False, index=True))
    created_at: datetime = utc_timestamp()


class WaitlistTally(SQLModel, table=True):
    """How many people wait in a state whose place counts from a given day (UTC) of `confirmed_at`: one row
    per state and day with anyone waiting, so a position is the sum of the earlier days plus a count
    inside the person's own day, and the people waiting in a state the sum of its rows; neither grows with
    the queue's length (docs/architecture.md, "Waiting list").

    Written only by triggers on waitlist_entry (migration 0016), in the same transaction as the change:
    +1 when an entry becomes `waiting` (confirm, rejoin, or any insert of a waiting row), -1 when it stops
    (invite, leave, delete), both when a waiting entry moves to another state or day. A row at zero is
    deleted. Every writer, the app's transitions, the demo seed and bulk SQL alike, keeps it right."""

    __tablename__ = "waitlist_tally"
    __table_args__ = (CheckConstraint("waiting >= 0", name="waiting_not_negative"),)

    state: str = Field(max_length=2, primary_key=True)
    bucket_start: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    waiting: int = Field(sa_column=Column(Integer, nullable=False))
