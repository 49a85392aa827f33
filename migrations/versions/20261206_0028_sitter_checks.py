"""sitter checks: a coordinator's verification of each sitter (when, how: video or phone, by whom, a note),
a sitter may withdraw (status 'withdrawn'), and an attestation sent from where the patient acted is flagged
(sitter_attestation.same_as_patient: 'address' or 'device')

No backfill: sitters named before this revision are unverified. The issue that asked for the check found
patients naming themselves as sitters, so an existing sitter is exactly who should be called; with
SITTER_VERIFICATION_REQUIRED on (the default) their next session waits for a coordinator's call.

Revision ID: 0028_sitter_checks
Revises: 0027_two_factor_counter
Create Date: 2026-12-06 21:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate emits sqlmodel.sql.sqltypes.AutoString
from alembic import op

import telehealth.db.types

# revision identifiers, used by Alembic.
revision: str = "0028_sitter_checks"
down_revision: str | Sequence[str] | None = "0027_two_factor_counter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES_BEFORE = "'invited', 'confirmed', 'declined', 'removed'"
STATUSES = "'invited', 'confirmed', 'declined', 'removed', 'withdrawn'"


def upgrade() -> None:
    op.add_column("sitter", sa.Column("verified_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column("sitter", sa.Column("verified_by", sa.Uuid(), nullable=True))
    op.add_column("sitter", sa.Column("verification_method", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
    op.add_column("sitter", sa.Column("verification_note", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True))
    op.create_foreign_key(
        op.f("fk_sitter_verified_by_user_account"), "sitter", "user_account", ["verified_by"], ["id"], ondelete="RESTRICT"
    )
    op.create_check_constraint(
        op.f("ck_sitter_verification_method_known"), "sitter", "verification_method IS NULL OR verification_method IN ('video', 'phone')"
    )
    op.create_check_constraint(
        op.f("ck_sitter_verification_whole"),
        "sitter",
        "(verified_at IS NULL) = (verified_by IS NULL) AND (verified_at IS NULL) = (verification_method IS NULL)",
    )
    op.drop_constraint(op.f("ck_sitter_status_known"), "sitter", type_="check")
    op.create_check_constraint(op.f("ck_sitter_status_known"), "sitter", f"status IN ({STATUSES})")
    op.add_column("sitter_attestation", sa.Column("same_as_patient", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
    op.create_check_constraint(
        op.f("ck_sitter_attestation_same_as_patient_known"),
        "sitter_attestation",
        "same_as_patient IS NULL OR same_as_patient IN ('address', 'device')",
    )


def downgrade() -> None:
    # Fails while a sitter has withdrawn: their status is a record, not rewritten by a downgrade.
    op.drop_constraint(op.f("ck_sitter_attestation_same_as_patient_known"), "sitter_attestation", type_="check")
    op.drop_column("sitter_attestation", "same_as_patient")
    op.drop_constraint(op.f("ck_sitter_status_known"), "sitter", type_="check")
    op.create_check_constraint(op.f("ck_sitter_status_known"), "sitter", f"status IN ({STATUSES_BEFORE})")
    op.drop_constraint(op.f("ck_sitter_verification_whole"), "sitter", type_="check")
    op.drop_constraint(op.f("ck_sitter_verification_method_known"), "sitter", type_="check")
    op.drop_constraint(op.f("fk_sitter_verified_by_user_account"), "sitter", type_="foreignkey")
    op.drop_column("sitter", "verification_note")
    op.drop_column("sitter", "verification_method")
    op.drop_column("sitter", "verified_by")
    op.drop_column("sitter", "verified_at")
