"""job queue order: a number on each job as it is queued, so jobs due at the same moment run in the order they
were queued (a sitter told "On hold" before "Back on"; the claim ordered by run_at alone, and a request's jobs
share it)

Revision ID: 0033_job_queue_order
Revises: 0032_demo_clock
Create Date: 2026-12-08 00:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033_job_queue_order"
down_revision: str | Sequence[str] | None = "0032_demo_clock"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    # Online: the column without a default (no table rewrite), then the default for rows from now on. Jobs already
    # queued keep NULL, which sorts after every number: at equal run_at they run after newer ones, once.
    op.execute("CREATE SEQUENCE job_queued_seq AS bigint")
    op.add_column("job", sa.Column("queued_seq", sa.BigInteger(), nullable=True))
    op.alter_column("job", "queued_seq", server_default=sa.text("nextval('job_queued_seq')"))
    op.execute("ALTER SEQUENCE job_queued_seq OWNED BY job.queued_seq")
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_job_due_in_order", "job", ["run_at", "queued_seq"], postgresql_where=LIVE, postgresql_concurrently=True, if_not_exists=True
        )
        op.drop_index("ix_job_due", table_name="job", postgresql_concurrently=True, if_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_job_due", "job", ["run_at"], postgresql_where=LIVE, postgresql_concurrently=True, if_not_exists=True)
        op.drop_index("ix_job_due_in_order", table_name="job", postgresql_concurrently=True, if_exists=True)
    op.drop_column("job", "queued_seq")  # drops the sequence it owns
