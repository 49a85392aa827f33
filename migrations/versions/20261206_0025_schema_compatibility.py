"""schema compatibility: the oldest code revision this database still serves (rolling releases)

Migrations are expand first; one that breaks older code raises `oldest_code_revision` to its own revision
in the same transaction (`op.execute("UPDATE schema_compatibility SET oldest_code_revision = '<this>'")`).
An instance whose code does not know that revision stops being ready; older-but-compatible instances stay
ready while the database is ahead of them (telehealth/db/migrate.py).

Revision ID: 0025_schema_compatibility
Revises: 0024_observation_window
Create Date: 2026-12-06 21:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_schema_compatibility"
down_revision: str | Sequence[str] | None = "0024_observation_window"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schema_compatibility",
        sa.Column("one_row", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("oldest_code_revision", sa.String(length=100), nullable=False),
        sa.CheckConstraint("one_row", name=op.f("ck_schema_compatibility_one_row")),
        sa.PrimaryKeyConstraint("one_row", name=op.f("pk_schema_compatibility")),
    )
    # Code older than this revision predates the table and cannot read it: this is the oldest that can.
    op.execute("INSERT INTO schema_compatibility (oldest_code_revision) VALUES ('0025_schema_compatibility')")


def downgrade() -> None:
    op.drop_table("schema_compatibility")
