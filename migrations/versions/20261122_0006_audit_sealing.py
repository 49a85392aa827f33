"""audit sealing

Revision ID: 0006_audit_sealing
Revises: 0005_intake_risk_reasons
Create Date: 2026-11-22 01:16:25.370548

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006_audit_sealing"
down_revision: str | Sequence[str] | None = "0005_intake_risk_reasons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Sealing may fill chain_seq, prev_hash and row_hash once, when they are empty; nothing else may change.
SEALING_TRIGGER = """
CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_seq IS NULL AND OLD.row_hash IS NULL AND NEW.chain_seq IS NOT NULL
       AND (NEW.id, NEW.occurred_at, NEW.actor_user_id, NEW.actor_role, NEW.action, NEW.resource_type,
            NEW.resource_id, NEW.patient_id, NEW.ip, NEW.user_agent, NEW.outcome, NEW.reason)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.occurred_at, OLD.actor_user_id, OLD.actor_role, OLD.action, OLD.resource_type,
            OLD.resource_id, OLD.patient_id, OLD.ip, OLD.user_agent, OLD.outcome, OLD.reason) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""

APPEND_ONLY_TRIGGER = """
CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def upgrade() -> None:
    # Writers no longer hash under a global lock; a sealer chains committed events (see docs/architecture.md).
    op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
    op.add_column("audit_event", sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.alter_column("audit_event", "prev_hash", existing_type=sa.VARCHAR(length=64), nullable=True)
    op.alter_column("audit_event", "row_hash", existing_type=sa.VARCHAR(length=64), nullable=True)
    op.create_unique_constraint(op.f("uq_audit_event_chain_seq"), "audit_event", ["chain_seq"])
    # Events hashed the old way are sealed again the new way (their content is untouched).
    op.execute("UPDATE audit_event SET prev_hash = NULL, row_hash = NULL")
    op.execute(SEALING_TRIGGER)
    op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


def downgrade() -> None:
    op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
    op.execute(APPEND_ONLY_TRIGGER)
    op.execute("DELETE FROM audit_event WHERE row_hash IS NULL")  # unsealed events cannot satisfy NOT NULL
    op.drop_constraint(op.f("uq_audit_event_chain_seq"), "audit_event", type_="unique")
    op.alter_column("audit_event", "row_hash", existing_type=sa.VARCHAR(length=64), nullable=False)
    op.alter_column("audit_event", "prev_hash", existing_type=sa.VARCHAR(length=64), nullable=False)
    op.drop_column("audit_event", "chain_seq")
    op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")
