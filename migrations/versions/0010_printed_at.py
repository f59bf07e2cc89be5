"""A printed held job's instant of printing (`held_jobs.printed_at`), so that reports count it
once, when it printed, at the edges of a period as in the daily totals (docs/reports.md).

Rows of jobs printed before this revision take the time their Printed event was recorded
(`changed_at`: printing is a held job's last lifecycle event), which is the clock's time of
printing to within the recording; `pageledger projections rebuild jobs` gives the exact one.

Revision ID: 0010_printed_at
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_printed_at"
down_revision = "0009_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("held_jobs") as batch:
        batch.add_column(sa.Column("printed_at", sa.BigInteger, nullable=True))
    op.execute("UPDATE held_jobs SET printed_at = changed_at WHERE status = 4")
    op.create_index("ix_held_jobs_printed_at", "held_jobs", ["printed_at"],
                    sqlite_where=sa.text("printed_at IS NOT NULL"), postgresql_where=sa.text("printed_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_held_jobs_printed_at", table_name="held_jobs")
    with op.batch_alter_table("held_jobs") as batch:
        batch.drop_column("printed_at")
