"""calendar version: one row whose n goes up with every change to what a slot search's roster is made of

App processes keep each roster they load (telehealth/scheduling/roster.py) and reload it once n has moved.
Statement triggers on weekly_hours, date_override, appointment_type_settings, state_license,
dea_registration and clinician_profile (its zone), and a row trigger on user_account for clinicians' name,
role and activity, add 1 in the writing transaction, so every writer (the app, the demo seed, bulk SQL, a
TRUNCATE) moves it. Appointments are not among them: busy spans are read fresh by every search.

Revision ID: 0017_calendar_version
Revises: 0016_waitlist_tally
Create Date: 2026-12-05 11:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017_calendar_version"
down_revision: str | Sequence[str] | None = "0016_waitlist_tally"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP_FUNCTION = """
CREATE FUNCTION calendar_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE calendar_version SET n = n + 1;
    RETURN NULL;
END
$$
"""
EVERY_CHANGE = ("weekly_hours", "date_override", "appointment_type_settings", "state_license", "dea_registration")
CLINICIAN_ROLES = "('prescriber', 'therapist')"


def upgrade() -> None:
    op.create_table(
        "calendar_version",
        sa.Column("only_row", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("token", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("n", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("only_row", name=op.f("ck_calendar_version_one_row")),
        sa.PrimaryKeyConstraint("only_row", name=op.f("pk_calendar_version")),
    )
    op.execute("INSERT INTO calendar_version DEFAULT VALUES")
    op.execute(BUMP_FUNCTION)
    for table in EVERY_CHANGE:
        op.execute(
            f"CREATE TRIGGER calendar_version_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION calendar_version_bump()"
        )
    op.execute(
        "CREATE TRIGGER calendar_version_bump AFTER INSERT OR UPDATE OF timezone OR DELETE OR TRUNCATE ON clinician_profile"
        " FOR EACH STATEMENT EXECUTE FUNCTION calendar_version_bump()"
    )
    op.execute(
        "CREATE TRIGGER calendar_version_bump AFTER UPDATE OF role, is_active, full_name ON user_account FOR EACH ROW"
        f" WHEN ((OLD.role IN {CLINICIAN_ROLES} OR NEW.role IN {CLINICIAN_ROLES})"
        " AND (OLD.role, OLD.is_active, OLD.full_name) IS DISTINCT FROM (NEW.role, NEW.is_active, NEW.full_name))"
        " EXECUTE FUNCTION calendar_version_bump()"
    )


def downgrade() -> None:
    for table in (*EVERY_CHANGE, "clinician_profile", "user_account"):
        op.execute(f"DROP TRIGGER calendar_version_bump ON {table}")
    op.execute("DROP FUNCTION calendar_version_bump()")
    op.drop_table("calendar_version")
