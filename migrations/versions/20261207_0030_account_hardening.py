"""account hardening: user_account.totp_secret widened to 200 characters for AES-GCM sealed secrets
("v1:<key id>:<base64url nonce+ciphertext>", about 120 characters; accounts/totp_secrets.py)

No data change here: the key lives in the app's environment, and encrypting belongs with rotating (the same
job), so `encrypt-totp-secrets` does both (docs/operations.md). Until it runs, a secret still in clear is read
as it is and encrypted at its owner's next correct code. Widening a varchar rewrites nothing in PostgreSQL.
Code before this revision cannot read the sealed secrets this code writes (at enrolment, and at each owner's
next correct code): a staff member served by an old instance afterwards could not sign in. So this revision
raises schema_compatibility.oldest_code_revision to itself (migration 0025): old instances stop being ready.

Downgrade narrows the column back: it fails while any sealed secret is stored (as it should: the code before
this revision cannot read them).

Revision ID: 0030_account_hardening
Revises: 0029_runtime_role
Create Date: 2026-12-06 23:30:00

"""

from collections.abc import Sequence

import sqlmodel  # autogenerate emits sqlmodel.sql.sqltypes.AutoString
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0030_account_hardening"
down_revision: str | Sequence[str] | None = "0029_runtime_role"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Widening a VARCHAR only changes the catalog in PostgreSQL (no table rewrite), so the linter's rule about
    # column types does not apply; the comment travels with the statement into the rendered SQL it lints.
    op.execute("-- squawk-ignore changing-column-type\nALTER TABLE user_account ALTER COLUMN totp_secret TYPE VARCHAR(200)")
    op.execute("UPDATE schema_compatibility SET oldest_code_revision = '0030_account_hardening'")


def downgrade() -> None:
    op.execute("UPDATE schema_compatibility SET oldest_code_revision = '0025_schema_compatibility'")  # its value before
    op.alter_column(
        "user_account",
        "totp_secret",
        existing_type=sqlmodel.sql.sqltypes.AutoString(length=200),
        type_=sqlmodel.sql.sqltypes.AutoString(length=64),
        existing_nullable=True,
    )
