"""waitlist autovacuum: keep the queue's visibility map fresh

Position lookups are index-only counts over the queue index; they stay fast only while most pages are
all-visible. The default 20% threshold lets a million-row table drift for a long time (docs/benchmarks.md).

Revision ID: 0007_waitlist_autovacuum
Revises: 0006_audit_sealing
Create Date: 2026-11-22 01:20:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_waitlist_autovacuum"
down_revision: str | Sequence[str] | None = "0006_audit_sealing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE waitlist_entry SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02)")


def downgrade() -> None:
    op.execute("ALTER TABLE waitlist_entry RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor)")
