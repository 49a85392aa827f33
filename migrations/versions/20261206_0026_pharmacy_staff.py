"""pharmacy staff: a pharmacist belongs to exactly one pharmacy (pharmacy_staff, keyed by the account), and
sees and works that pharmacy's batches only

A pharmacist with no row sees no queue. Existing pharmacists are placed in the pharmacy only where the clinic
has exactly one (the one they were already filling for); with several, a coordinator assigns each.

Revision ID: 0026_pharmacy_staff
Revises: 0025_schema_compatibility
Create Date: 2026-12-06 22:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.db.types

# revision identifiers, used by Alembic.
revision: str = "0026_pharmacy_staff"
down_revision: str | Sequence[str] | None = "0025_schema_compatibility"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pharmacy_staff",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pharmacy_id"], ["pharmacy.id"], name=op.f("fk_pharmacy_staff_pharmacy_id_pharmacy"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_pharmacy_staff_user_id_user_account"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_pharmacy_staff")),
    )
    op.create_index(op.f("ix_pharmacy_staff_pharmacy_id"), "pharmacy_staff", ["pharmacy_id"], unique=False)
    op.execute(
        "INSERT INTO pharmacy_staff (user_id, pharmacy_id, assigned_at) "
        "SELECT u.id, p.id, now() FROM user_account u CROSS JOIN pharmacy p "
        "WHERE u.role = 'pharmacist' AND (SELECT count(*) FROM pharmacy) = 1"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pharmacy_staff_pharmacy_id"), table_name="pharmacy_staff")
    op.drop_table("pharmacy_staff")
