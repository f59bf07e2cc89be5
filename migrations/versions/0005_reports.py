"""Reports: the jobs of a period found by their time (ix_jobs_submitted_at, and ix_jobs_denied_at for the few denied ones), and the scheduled
reports read model (report_schedules).

Revision ID: 0005_reports
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_reports"
down_revision = "0008_agent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_submitted_at", "jobs", ["submitted_at"])
    op.create_index("ix_jobs_denied_at", "jobs", ["submitted_at"], sqlite_where=sa.text("status = 1"),
                    postgresql_where=sa.text("status = 1"))
    op.create_table(
        "report_schedules",
        sa.Column("schedule_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("report", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("cron", sa.String(100), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("defined_at", sa.BigInteger, nullable=False),
        sa.Column("defined_by", sa.String(255), nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
        sa.Column("last_due", sa.BigInteger, nullable=False),
        sa.Column("last_outcome", sa.String(16), nullable=False),
        sa.Column("last_attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("last_run_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("report_schedules")
    op.drop_index("ix_jobs_denied_at", table_name="jobs")
    op.drop_index("ix_jobs_submitted_at", table_name="jobs")
