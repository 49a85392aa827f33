"""prescribing basis: in-person evaluations (in_person_evaluation), telemedicine special registrations
(special_registration), and the basis each plan was signed under (troche_plan.prescribing_basis with the
evaluation or registration it rests on)

After TELEMEDICINE_FLEXIBILITIES_UNTIL a signature needs one of the two records (prescribing/basis.py). A
registration or evaluation a signed plan cites cannot be deleted (RESTRICT): it is the plan's evidence.
Plans signed before this revision were signed while the flexibilities were in force (the service has run
only before 2027-01-01), so they are marked as signed under them.

Revision ID: 0020_prescribing_basis
Revises: 0019_video_visits
Create Date: 2026-12-06 14:16:03

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate emits sqlmodel.sql.sqltypes.AutoString
from alembic import op

import telehealth.db.types

# revision identifiers, used by Alembic.
revision: str = "0020_prescribing_basis"
down_revision: str | Sequence[str] | None = "0019_video_visits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BASES = "('telemedicine_flexibilities', 'in_person_evaluation', 'special_registration')"


def upgrade() -> None:
    op.create_table(
        "special_registration",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinician_id", sa.Uuid(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("reminded_for_expiry", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["user_account.id"], name=op.f("fk_special_registration_clinician_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_special_registration")),
        sa.UniqueConstraint("clinician_id", "state", name=op.f("uq_special_registration_clinician_id_state")),
    )
    op.create_table(
        "in_person_evaluation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("prescriber_id", sa.Uuid(), nullable=False),
        sa.Column("evaluated_on", sa.Date(), nullable=False),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(btrim(place)) > 0", name=op.f("ck_in_person_evaluation_place_given")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_in_person_evaluation_patient_id_patient"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["prescriber_id"], ["user_account.id"], name=op.f("fk_in_person_evaluation_prescriber_id_user_account"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["user_account.id"], name=op.f("fk_in_person_evaluation_recorded_by_user_account"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_in_person_evaluation")),
    )
    op.create_index("ix_in_person_evaluation_patient_prescriber", "in_person_evaluation", ["patient_id", "prescriber_id"], unique=False)

    op.add_column("troche_plan", sa.Column("prescribing_basis", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
    op.add_column("troche_plan", sa.Column("in_person_evaluation_id", sa.Uuid(), nullable=True))
    op.add_column("troche_plan", sa.Column("special_registration_id", sa.Uuid(), nullable=True))
    op.execute("UPDATE troche_plan SET prescribing_basis = 'telemedicine_flexibilities' WHERE signed_at IS NOT NULL")
    op.create_index(op.f("ix_troche_plan_special_registration_id"), "troche_plan", ["special_registration_id"], unique=False)
    op.create_foreign_key(
        op.f("fk_troche_plan_special_registration_id_special_registration"),
        "troche_plan",
        "special_registration",
        ["special_registration_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        op.f("fk_troche_plan_in_person_evaluation_id_in_person_evaluation"),
        "troche_plan",
        "in_person_evaluation",
        ["in_person_evaluation_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_check_constraint(
        op.f("ck_troche_plan_basis_known"), "troche_plan", f"prescribing_basis IS NULL OR prescribing_basis IN {BASES}"
    )
    op.create_check_constraint(
        op.f("ck_troche_plan_basis_cites_its_record"),
        "troche_plan",
        "(in_person_evaluation_id IS NOT NULL) = (prescribing_basis IS NOT DISTINCT FROM 'in_person_evaluation') AND "
        "(special_registration_id IS NOT NULL) = (prescribing_basis IS NOT DISTINCT FROM 'special_registration')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_troche_plan_basis_cites_its_record"), "troche_plan", type_="check")
    op.drop_constraint(op.f("ck_troche_plan_basis_known"), "troche_plan", type_="check")
    op.drop_constraint(op.f("fk_troche_plan_in_person_evaluation_id_in_person_evaluation"), "troche_plan", type_="foreignkey")
    op.drop_constraint(op.f("fk_troche_plan_special_registration_id_special_registration"), "troche_plan", type_="foreignkey")
    op.drop_index(op.f("ix_troche_plan_special_registration_id"), table_name="troche_plan")
    op.drop_column("troche_plan", "special_registration_id")
    op.drop_column("troche_plan", "in_person_evaluation_id")
    op.drop_column("troche_plan", "prescribing_basis")
    op.drop_index("ix_in_person_evaluation_patient_prescriber", table_name="in_person_evaluation")
    op.drop_table("in_person_evaluation")
    op.drop_table("special_registration")
