"""video visits: the visit an appointment became (video_visit: modality, start and its evidence, end) and who
was in the built-in room when (visit_connection)

The encounter, the decision and the signature follow the visit's start (prescribing/encounters.py).
Encounters opened before this revision have no visit row: an undecided one can be decided only after its
visit is recorded (the patient and prescriber meet in the room, or the prescriber attests an external one).

Revision ID: 0019_video_visits
Revises: 0018_busy_from_index
Create Date: 2026-12-06 14:09:56.218864

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate emits sqlmodel.sql.sqltypes.AutoString
from alembic import op

import telehealth.db.types

# revision identifiers, used by Alembic.
revision: str = "0019_video_visits"
down_revision: str | Sequence[str] | None = "0018_busy_from_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "video_visit",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("modality", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("started_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("start_evidence", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("attested_by", sa.Uuid(), nullable=True),
        sa.Column("ended_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("modality IN ('audio_video')", name=op.f("ck_video_visit_modality_known")),
        sa.CheckConstraint(
            "start_evidence <> 'clinician_attested' OR attested_by IS NOT NULL", name=op.f("ck_video_visit_attestation_has_author")
        ),
        sa.CheckConstraint("start_evidence IN ('both_connected', 'clinician_attested')", name=op.f("ck_video_visit_evidence_known")),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_video_visit_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointment.id"], name=op.f("fk_video_visit_appointment_id_appointment"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["attested_by"], ["user_account.id"], name=op.f("fk_video_visit_attested_by_user_account"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("appointment_id", name=op.f("pk_video_visit")),
    )
    op.create_table(
        "visit_connection",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("participant", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("joined_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("left_at", telehealth.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("participant IN ('patient', 'clinician')", name=op.f("ck_visit_connection_participant_known")),
        sa.CheckConstraint("left_at IS NULL OR left_at >= joined_at", name=op.f("ck_visit_connection_leaves_after_join")),
        sa.ForeignKeyConstraint(
            ["appointment_id"], ["appointment.id"], name=op.f("fk_visit_connection_appointment_id_appointment"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_visit_connection_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_connection")),
    )
    op.create_index(op.f("ix_visit_connection_appointment_id"), "visit_connection", ["appointment_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_visit_connection_appointment_id"), table_name="visit_connection")
    op.drop_table("visit_connection")
    op.drop_table("video_visit")
