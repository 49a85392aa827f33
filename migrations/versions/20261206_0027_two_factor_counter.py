"""two-factor guessing: wrong codes are counted apart from wrong passwords (rows in rate_limit_event, buckets
two_factor_failure per account and two_factor_failure_ip per address), and too many lock the second factor
until user_account.two_factor_locked_until

Nothing to backfill: no account starts locked; wrong codes made before this revision added to
failed_login_count, which now counts wrong passwords only.

Revision ID: 0027_two_factor_counter
Revises: 0026_pharmacy_staff
Create Date: 2026-12-06 21:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.db.types

# revision identifiers, used by Alembic.
revision: str = "0027_two_factor_counter"
down_revision: str | Sequence[str] | None = "0026_pharmacy_staff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_account", sa.Column("two_factor_locked_until", telehealth.db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("user_account", "two_factor_locked_until")
