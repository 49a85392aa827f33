"""clinician credentials: remember which expiry each credential's holder was reminded of

The daily reminder marks a credential with a compare-and-swap on this column, so each expiry is emailed
once; the outbox's dedupe keys hold only while a job is live, and finished jobs are pruned after a week.

Revision ID: 0011_clinician_credentials
Revises: 0010_prescribing
Create Date: 2026-11-22 03:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_clinician_credentials"
down_revision: str | Sequence[str] | None = "0010_prescribing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("state_license", sa.Column("reminded_for_expiry", sa.Date(), nullable=True))
    op.add_column("dea_registration", sa.Column("reminded_for_expiry", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("dea_registration", "reminded_for_expiry")
    op.drop_column("state_license", "reminded_for_expiry")
