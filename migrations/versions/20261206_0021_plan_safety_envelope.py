"""plan safety envelope: the database refuses a troche plan beyond the envelope's hardest limits (at most 12
sessions, at least 48 hours between them, one dose per session, each 1 to 400 mg), whatever writes the row

The service refuses first, with words (prescribing/rules.py); settings may only tighten these limits
(settings.ClinicalThresholds.check_envelope).

Revision ID: 0021_plan_safety_envelope
Revises: 0020_prescribing_basis
Create Date: 2026-12-06 16:00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_plan_safety_envelope"
down_revision: str | Sequence[str] | None = "0020_prescribing_basis"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENVELOPE = (
    "sessions <= 12 AND min_hours_between >= 48 AND jsonb_array_length(doses_mg) = sessions "
    "AND NOT jsonb_path_exists(doses_mg, '$[*] ? (@ > 400 || @ < 1)')"
)


def upgrade() -> None:
    op.create_check_constraint(op.f("ck_troche_plan_within_safety_envelope"), "troche_plan", ENVELOPE)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_troche_plan_within_safety_envelope"), "troche_plan", type_="check")
