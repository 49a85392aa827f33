"""check-in contact request: an escalation may be a crisis or a contact request (a check-in's PHQ-9 item 9
of 1 or 2: the dose is held and the care team asked to reach the patient, the plan is not paused)

Revision ID: 0022_check_in_contact_request
Revises: 0021_plan_safety_envelope
Create Date: 2026-12-06 20:30:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_check_in_contact_request"
down_revision: str | Sequence[str] | None = "0021_plan_safety_envelope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_escalation_kind_known"), "escalation", type_="check")
    op.create_check_constraint(op.f("ck_escalation_kind_known"), "escalation", "kind IN ('crisis', 'contact')")


def downgrade() -> None:
    op.execute("DELETE FROM escalation WHERE kind = 'contact'")
    op.drop_constraint(op.f("ck_escalation_kind_known"), "escalation", type_="check")
    op.create_check_constraint(op.f("ck_escalation_kind_known"), "escalation", "kind IN ('crisis')")
