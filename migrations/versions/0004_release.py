"""Secure release: the held_jobs table beside jobs (docs/secure-release.md). The jobs table keeps
its shape; its status column now also holds held (2), released, printed, failed, expired and
deleted (7).

Revision ID: 0004_release
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_release"
down_revision = "0003_projection_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("printer_id", sa.Integer, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("has_data", sa.Boolean, nullable=False),
        sa.Column("spool", sa.String(64), nullable=False),
        sa.Column("code_digest", sa.String(64), nullable=False),
        sa.Column("released_to", sa.String(255), nullable=False),
        sa.Column("released_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
    )
    op.create_index("ix_held_jobs_user", "held_jobs", ["user_id", "status"])
    op.create_index("ix_held_jobs_status_expires", "held_jobs", ["status", "expires_at"])
    op.create_index("ix_held_jobs_spool", "held_jobs", ["spool"])


def downgrade() -> None:
    op.drop_table("held_jobs")
