"""runtime role: audit_event.key_id, the HMAC key that sealed each event

The chain is now keyed (HMAC-SHA256 under AUDIT_HMAC_KEY, which the database never holds). Events sealed
before this revision keep their plain SHA-256 hashes, untouched (resealing them would bless any edit made
before it): they are marked 'sha256-legacy' and verified as before, and only as the chain's first stretch,
so a legacy hash after a keyed one is a break. Unsealed events are sealed with the key as usual.

The grants of the service's runtime role are applied after every upgrade by `telehealth.db.roles`
(the role's name comes from the environment, not from a migration).

Revision ID: 0029_runtime_role
Revises: 0028_sitter_checks
Create Date: 2026-12-07 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate emits sqlmodel.sql.sqltypes.AutoString
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0029_runtime_role"
down_revision: str | Sequence[str] | None = "0028_sitter_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    # The append-only trigger refuses any change to a sealed event; this one-time marking is the owner's.
    op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
    op.execute("UPDATE audit_event SET key_id = 'sha256-legacy' WHERE chain_seq IS NOT NULL")
    op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


def downgrade() -> None:
    # Events sealed with a key no longer verify after this (the old code hashes with plain SHA-256).
    op.drop_column("audit_event", "key_id")
