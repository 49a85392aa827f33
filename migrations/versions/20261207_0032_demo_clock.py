"""demo clock: one row saying how far the embedded demo's clock is moved (/dev/clock), read by the web and
worker processes alike; no row means real time

Revision ID: 0032_demo_clock
Revises: 0031_dev_mailbox_attachments
Create Date: 2026-12-08 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032_demo_clock"
down_revision: str | Sequence[str] | None = "0031_dev_mailbox_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "demo_clock",
        sa.Column("one_row", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("offset_seconds", sa.BigInteger(), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moved_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint("offset_seconds BETWEEN 0 AND 31622400", name=op.f("ck_demo_clock_offset_within_a_year")),
        sa.CheckConstraint("one_row", name=op.f("ck_demo_clock_one_row")),
        sa.PrimaryKeyConstraint("one_row", name=op.f("pk_demo_clock")),
    )


def downgrade() -> None:
    op.drop_table("demo_clock")
