"""meetings: meetings and series, occurrences, co-hosts, invitees, transitions, join grants and
attempts, scheduler heartbeats

Revision ID: 0004_meetings
Revises: 0003_change_versions
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_meetings"
down_revision = "0003_change_versions"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("host_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("instant", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("private", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("password_hash", sa.String(100), nullable=True),
        sa.Column("max_participants", sa.Integer, nullable=False, server_default="0"),
        sa.Column("early_join_minutes", sa.Integer, nullable=False, server_default="5"),
        sa.Column("guests_before_host", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("keep_chat", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("recurrence", sa.Text, nullable=True),
        sa.Column("first_start", WHEN, nullable=False),
        sa.Column("link_slug", sa.String(64), nullable=False, unique=True),
        sa.Column("link_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("uid", sa.String(128), nullable=False, unique=True),
        sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_index("ix_meetings_host_id", "meetings", ["host_id"])
    op.create_table(
        "occurrences",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("starts_at", WHEN, nullable=False),
        sa.Column("ends_at", WHEN, nullable=False),
        sa.Column("original_start", WHEN, nullable=False),
        sa.Column("moved", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("room_name", sa.String(128), nullable=False, unique=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("started_at", WHEN, nullable=True),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("waiting_since", WHEN, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_occurrences_meeting_id", "occurrences", ["meeting_id"])
    op.create_index("ix_occurrences_status_starts_at", "occurrences", ["status", "starts_at"])
    op.create_index("ix_occurrences_status_ends_at", "occurrences", ["status", "ends_at"])
    op.create_table(
        "meeting_cohosts",
        sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_meeting_cohosts_user_id", "meeting_cohosts", ["user_id"])
    op.create_table(
        "meeting_invitees",
        sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("email", sa.String(320), primary_key=True),
    )
    op.create_table(
        "meeting_transitions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("occurrence_id", sa.Integer, sa.ForeignKey("occurrences.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", WHEN, nullable=False),
    )
    op.create_index("ix_meeting_transitions_occurrence_id", "meeting_transitions", ["occurrence_id"])
    op.create_table(
        "join_grants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("occurrence_id", sa.Integer, sa.ForeignKey("occurrences.id", ondelete="CASCADE"), nullable=False),
        sa.Column("identity", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("host", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("issued_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
    )
    op.create_index("ix_join_grants_occurrence_id", "join_grants", ["occurrence_id"])
    op.create_index("ix_join_grants_identity", "join_grants", ["identity"])
    op.create_table(
        "join_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
    )
    op.create_index("ix_join_attempts_meeting_id", "join_attempts", ["meeting_id"])
    op.create_index("ix_join_attempts_at", "join_attempts", ["at"])
    op.create_table(
        "scheduler_heartbeats",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("last_tick_at", WHEN, nullable=False),
        sa.Column("ticks", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("stopped", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    for table in (
        "scheduler_heartbeats", "join_attempts", "join_grants", "meeting_transitions",
        "meeting_invitees", "meeting_cohosts", "occurrences", "meetings",
    ):  # fmt: skip
        op.drop_table(table)
