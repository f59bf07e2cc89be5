"""Job Accounting's state filter over many jobs (docs/console.md, bench/console_bench.py): the few
jobs of secure queues by state (`ix_jobs_secure_seq`, partial: only rows with status >= 2, so it
costs nothing where no queue is secure).

Revision ID: 0011_console_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_console_indexes"
down_revision = "0010_printed_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_secure_seq", "jobs", ["seq"], sqlite_where=sa.text("status >= 2"),
                    postgresql_where=sa.text("status >= 2"))


def downgrade() -> None:
    op.drop_index("ix_jobs_secure_seq", table_name="jobs")
