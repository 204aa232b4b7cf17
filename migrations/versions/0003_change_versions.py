"""change versions: a counter per kind of shared setting, polled by every process

Revision ID: 0003_change_versions
Revises: 0002_users_sessions_audit
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_change_versions"
down_revision = "0002_users_sessions_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_versions",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("change_versions")
