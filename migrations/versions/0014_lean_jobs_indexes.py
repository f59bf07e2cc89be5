"""Leaner jobs indexes (issue 16's disk target).

- `ix_jobs_submitted_at` becomes a BRIN index on PostgreSQL: jobs are appended about in the
  order they were submitted, so the minimum and maximum time of each 128 pages finds a period's
  rows for a few bytes per million jobs, where the btree took ~23 B a job. SQLite has no BRIN
  and keeps its btree. A BRIN index only knows the pages it has summarised: autovacuum
  summarises new ones (`autosummarize`), and bulk loads call `projections.jobs.summarize_brin`.
- `ix_jobs_user_seq (user_id, seq)` becomes `ix_jobs_user (user_id)`. On SQLite every index
  entry ends with the rowid, which is `seq`: the new index holds the same (user_id, seq) pairs,
  without the second copy of `seq`. On PostgreSQL the btree now deduplicates a user's entries
  into one posting list (~7 B a job instead of ~32); a user's newest jobs are found through it
  and sorted (a few thousand rows for a busy user: see docs/reports.md).

Revision ID: 0014_lean_jobs_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_lean_jobs_indexes"
down_revision = "0013_savings_tables"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_jobs_user_seq", table_name="jobs")
    op.create_index("ix_jobs_user", "jobs", ["user_id"])
    if postgres:
        op.drop_index("ix_jobs_submitted_at", table_name="jobs")
        op.create_index("ix_jobs_submitted_at", "jobs", ["submitted_at"], postgresql_using="brin",
                        postgresql_with={"autosummarize": "on"})


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.drop_index("ix_jobs_submitted_at", table_name="jobs")
        op.create_index("ix_jobs_submitted_at", "jobs", ["submitted_at"])
    op.drop_index("ix_jobs_user", table_name="jobs")
    op.create_index("ix_jobs_user_seq", "jobs", ["user_id", "seq"])
