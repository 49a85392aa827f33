"""busy spans by start: a btree index of occupying appointments on (clinician_id, busy_from), and a check that
no busy span lasts more than a day

A slot search reads the busy spans of hundreds of clinicians over a few days. Through the exclusion
constraint's GiST index each `clinician_id = ANY(...)` entry cost a GiST descent (2.3 of 3.4 ms for 200
prescribers); a btree descends once per clinician and reads their spans in order. The overlap with a window
is then found by the span's start alone, which needs a bound on its length: the settings allow at most 8
hours (240 minutes and two buffers of 120), the check says a day.

Revision ID: 0018_busy_from_index
Revises: 0017_calendar_version
Create Date: 2026-12-05 11:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018_busy_from_index"
down_revision: str | Sequence[str] | None = "0017_calendar_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_check_constraint(op.f("ck_appointment_busy_within_a_day"), "appointment", "busy_until - busy_from <= interval '1 day'")
    op.create_index(
        "ix_appointment_occupying_busy_from",
        "appointment",
        ["clinician_id", "busy_from"],
        unique=False,
        postgresql_include=["busy_until"],
        postgresql_where=sa.text("status IN ('held', 'booked')"),
    )


def downgrade() -> None:
    op.drop_index("ix_appointment_occupying_busy_from", table_name="appointment", postgresql_where=sa.text("status IN ('held', 'booked')"))
    op.drop_constraint(op.f("ck_appointment_busy_within_a_day"), "appointment", type_="check")
