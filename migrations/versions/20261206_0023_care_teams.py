"""care teams: membership with history (why and when each clinician joined, when and why they left), formed
by what happens (a booked consult or integration session, a signed plan) or a coordinator's assignment; and
break-glass grants (a clinician outside the care team reads a record for an urgent reason, for a while,
audited, shown to the care team, reviewed by a coordinator)

Existing teams keep their members ("seed"); the prescribers and therapists of booked or past appointments
and the prescribers of signed plans join, as they would have had these rules applied from the start.

Revision ID: 0023_care_teams
Revises: 0022_check_in_contact_request
Create Date: 2026-12-06 21:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import telehealth.db.types

revision: str = "0023_care_teams"
down_revision: str | Sequence[str] | None = "0022_check_in_contact_request"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOINED_BECAUSE = "joined_because IN ('seed', 'consult_booked', 'integration_booked', 'plan_signed', 'assigned')"


def upgrade() -> None:
    op.add_column("care_team_member", sa.Column("id", sa.Uuid(), nullable=True))
    op.execute("UPDATE care_team_member SET id = gen_random_uuid()")
    op.alter_column("care_team_member", "id", nullable=False)
    op.drop_constraint(op.f("pk_care_team_member"), "care_team_member", type_="primary")
    op.create_primary_key(op.f("pk_care_team_member"), "care_team_member", ["id"])
    op.add_column("care_team_member", sa.Column("joined_because", sa.String(length=20), server_default="seed", nullable=False))
    op.alter_column("care_team_member", "joined_because", server_default=None)
    op.add_column("care_team_member", sa.Column("added_by", sa.Uuid(), nullable=True))
    op.add_column("care_team_member", sa.Column("left_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column("care_team_member", sa.Column("left_because", sa.Text(), nullable=True))
    op.add_column("care_team_member", sa.Column("left_by", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_care_team_member_added_by_user_account"), "care_team_member", "user_account", ["added_by"], ["id"], ondelete="SET NULL"
    )
    op.create_foreign_key(
        op.f("fk_care_team_member_left_by_user_account"), "care_team_member", "user_account", ["left_by"], ["id"], ondelete="SET NULL"
    )
    op.create_check_constraint(op.f("ck_care_team_member_joined_because_known"), "care_team_member", JOINED_BECAUSE)
    op.create_check_constraint(
        op.f("ck_care_team_member_left_with_reason"), "care_team_member", "(left_at IS NULL) = (left_because IS NULL)"
    )
    op.create_index(
        "uq_care_team_member_current",
        "care_team_member",
        ["patient_id", "clinician_id"],
        unique=True,
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.create_index(op.f("ix_care_team_member_clinician_id"), "care_team_member", ["clinician_id"])
    op.execute(
        """
        INSERT INTO care_team_member (id, patient_id, clinician_id, added_at, joined_because)
        SELECT gen_random_uuid(), joined.patient_id, joined.clinician_id, min(joined.at), min(joined.because)
        FROM (
            SELECT a.patient_id, a.clinician_id, a.created_at AS at,
                   CASE WHEN a.appointment_type = 'integration' THEN 'integration_booked' ELSE 'consult_booked' END AS because
            FROM appointment a WHERE a.status IN ('booked', 'completed', 'no_show')
            UNION ALL
            SELECT p.patient_id, p.prescriber_id, p.signed_at, 'plan_signed' FROM troche_plan p WHERE p.signed_at IS NOT NULL
        ) AS joined
        WHERE NOT EXISTS (
            SELECT 1 FROM care_team_member m WHERE m.patient_id = joined.patient_id AND m.clinician_id = joined.clinician_id
        )
        GROUP BY joined.patient_id, joined.clinician_id
        """
    )
    # A therapist's psychotherapy notes stay theirs; a summary for the care team is shared (every note so far).
    op.add_column("clinical_note", sa.Column("kind", sa.String(length=20), server_default="shared", nullable=False))
    op.alter_column("clinical_note", "kind", server_default=None)
    op.create_check_constraint(op.f("ck_clinical_note_kind_known"), "clinical_note", "kind IN ('shared', 'psychotherapy')")
    op.create_table(
        "break_glass_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("clinician_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("granted_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.CheckConstraint("expires_at > granted_at", name=op.f("ck_break_glass_grant_expires_after_grant")),
        sa.ForeignKeyConstraint(
            ["clinician_id"], ["user_account.id"], name=op.f("fk_break_glass_grant_clinician_id_user_account"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], name=op.f("fk_break_glass_grant_patient_id_patient"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["user_account.id"], name=op.f("fk_break_glass_grant_reviewed_by_user_account"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass_grant")),
    )
    op.create_index(op.f("ix_break_glass_grant_patient_id"), "break_glass_grant", ["patient_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_break_glass_grant_patient_id"), table_name="break_glass_grant")
    op.drop_table("break_glass_grant")
    op.drop_constraint(op.f("ck_clinical_note_kind_known"), "clinical_note", type_="check")
    op.drop_column("clinical_note", "kind")
    op.execute("DELETE FROM care_team_member WHERE left_at IS NOT NULL")
    op.drop_index(op.f("ix_care_team_member_clinician_id"), table_name="care_team_member")
    op.drop_index("uq_care_team_member_current", table_name="care_team_member")
    for name in ("ck_care_team_member_left_with_reason", "ck_care_team_member_joined_because_known"):
        op.drop_constraint(op.f(name), "care_team_member", type_="check")
    for name in ("fk_care_team_member_left_by_user_account", "fk_care_team_member_added_by_user_account"):
        op.drop_constraint(op.f(name), "care_team_member", type_="foreignkey")
    for column in ("left_by", "left_because", "left_at", "added_by", "joined_because"):
        op.drop_column("care_team_member", column)
    op.drop_constraint(op.f("pk_care_team_member"), "care_team_member", type_="primary")
    op.create_primary_key(op.f("pk_care_team_member"), "care_team_member", ["patient_id", "clinician_id"])
    op.drop_column("care_team_member", "id")
