"""dev mailbox attachments: the development mailbox keeps each message's attachments (calendar invites), so
its page lists them and offers them for download

Revision ID: 0031_dev_mailbox_attachments
Revises: 0030_account_hardening
Create Date: 2026-12-06 23:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0031_dev_mailbox_attachments"
down_revision: str | Sequence[str] | None = "0030_account_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "dev_mailbox_message", sa.Column("attachments", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("dev_mailbox_message", "attachments")
