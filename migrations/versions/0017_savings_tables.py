"""The savings report's daily sums (`savings_daily`: a row per quarter of a UTC day; `savings_dirty`:
the quarters to recount from the rows), kept by the
jobs projection (projections/savings_daily.py), filled here from the jobs rows already
recorded so that the report reads the same figures at once.

Revision ID: 0017_savings_tables
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_savings_tables"
down_revision = "0016_job_applications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "savings_daily",
        sa.Column("span", sa.Integer, primary_key=True, autoincrement=False),  # quarters of a UTC day since 1970
        sa.Column("sums", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    # The spans to recount from the jobs rows (projections.savings_daily.savings_dirty).
    op.create_table(
        "savings_dirty",
        sa.Column("span", sa.Integer, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    # The sums of the jobs recorded before this revision, by the projection's own code.
    from projections.jobs import JOB_PRINTED, JOB_TRACKED, jobs
    from projections.savings_daily import SavingsTotals
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(jobs)).scalar():
        SavingsTotals(jobs, (JOB_TRACKED, JOB_PRINTED)).fill(bind)


def downgrade() -> None:
    op.drop_table("savings_dirty")
    op.drop_table("savings_daily")
