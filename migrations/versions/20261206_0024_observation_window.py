"""observation window and under-use: an end attestation or a report before the window after unlock closed
is recorded as ended early with its reason (sitter_attestation, dosing_report); the sitter's end link is
emailed once when the window closes (dosing_session.end_link_sent_at); a report of fewer troches than
prescribed is an inventory flag kind (fewer_than_prescribed)

Rows written before this revision were never early (the window was not enforced; ended_early false).

Revision ID: 0024_observation_window
Revises: 0023_care_teams
Create Date: 2026-12-07 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate emits sqlmodel.sql.sqltypes.AutoString
from alembic import op

import telehealth.db.types

# revision identifiers, used by Alembic.
revision: str = "0024_observation_window"
down_revision: str | Sequence[str] | None = "0023_care_teams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = "'loss_reported', 'count_below_zero', 'more_than_prescribed', 'early_batch_request'"
KINDS = "'loss_reported', 'count_below_zero', 'more_than_prescribed', 'fewer_than_prescribed', 'early_batch_request'"


def upgrade() -> None:
    op.add_column("dosing_session", sa.Column("end_link_sent_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=True))
    for table in ("dosing_report", "sitter_attestation"):
        op.add_column(table, sa.Column("ended_early", sa.Boolean(), server_default=sa.false(), nullable=False))
        op.alter_column(table, "ended_early", server_default=None)  # the model gives the value, as for the other flags
        op.add_column(table, sa.Column("ended_early_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True))
        op.create_check_constraint(op.f(f"ck_{table}_reason_only_when_ended_early"), table, "ended_early OR ended_early_reason IS NULL")
    op.create_check_constraint(
        op.f("ck_sitter_attestation_only_an_end_ends_early"), "sitter_attestation", "kind = 'end' OR NOT ended_early"
    )
    op.drop_constraint(op.f("ck_inventory_flag_kind_known"), "inventory_flag", type_="check")
    op.create_check_constraint(op.f("ck_inventory_flag_kind_known"), "inventory_flag", f"kind IN ({KINDS})")


def downgrade() -> None:
    # Fails while a fewer_than_prescribed flag exists: diversion flags are records, not deleted by a downgrade.
    op.drop_constraint(op.f("ck_inventory_flag_kind_known"), "inventory_flag", type_="check")
    op.create_check_constraint(op.f("ck_inventory_flag_kind_known"), "inventory_flag", f"kind IN ({KINDS_BEFORE})")
    op.drop_constraint(op.f("ck_sitter_attestation_only_an_end_ends_early"), "sitter_attestation", type_="check")
    for table in ("dosing_report", "sitter_attestation"):
        op.drop_constraint(op.f(f"ck_{table}_reason_only_when_ended_early"), table, type_="check")
        op.drop_column(table, "ended_early_reason")
        op.drop_column(table, "ended_early")
    op.drop_column("dosing_session", "end_link_sent_at")
