"""demo_clock: one row, how far the embedded demo's clock is moved (telehealth/devtools/demo_clock.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, text
from sqlmodel import Field

from telehealth.db.base import SQLModel, utc_timestamp


class DemoClock(SQLModel, table=True):
    """Read by every process of the demo (web and worker) so they agree on the time; absent means real time."""

    __tablename__ = "demo_clock"
    __table_args__ = (
        CheckConstraint("one_row", name="one_row"),
        CheckConstraint("offset_seconds BETWEEN 0 AND 31622400", name="offset_within_a_year"),  # forward only, at most a year
    )

    one_row: bool = Field(sa_column=Column(Boolean, primary_key=True, server_default=text("true")))
    offset_seconds: int = Field(sa_column=Column(BigInteger, nullable=False))
    moved_at: datetime = utc_timestamp()  # real time, when it was last moved
    moved_by: uuid.UUID | None = None  # the staff member's account (no foreign key: the demo's accounts come and go)
