"""The savings report's daily sums (`savings_daily`, and by the hour without the user `savings_hourly`) and the latest print of each user's
document (`last_prints`), kept by the jobs projection (projections/savings_daily.py), filled
here from the jobs rows already recorded so that the report reads the same figures at once.

Revision ID: 0013_savings_tables
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_savings_tables"
down_revision = "0012_narrow_jobs"
branch_labels = None
depends_on = None

PAPER = sa.String(32).with_variant(sa.String(32, collation="C"), "postgresql")  # bytewise order (audit verify)
FIGURES = ("d_n", "d_sheets", "d_mono", "d_colour", "m_n", "m_mono", "m_colour", "u_n", "u_sheets", "u_mono_now",
           "u_colour_now", "u_mono", "u_colour", "r_n", "r_sheets", "r_cost")


def upgrade() -> None:
    op.create_table(
        "savings_daily",
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("printer_id", sa.Integer, primary_key=True),
        sa.Column("paper", PAPER, primary_key=True),
        sa.Column("duplex", sa.Boolean, primary_key=True),
        *(sa.Column(c, sa.BigInteger, nullable=False) for c in FIGURES),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "savings_hourly",
        sa.Column("hour", sa.Integer, primary_key=True),
        sa.Column("printer_id", sa.Integer, primary_key=True),
        sa.Column("paper", PAPER, primary_key=True),
        sa.Column("duplex", sa.Boolean, primary_key=True),
        *(sa.Column(c, sa.BigInteger, nullable=False) for c in FIGURES),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "last_prints",
        sa.Column("user_id", sa.Integer, primary_key=True),
        sa.Column("digest", sa.BigInteger, primary_key=True),
        sa.Column("submitted_at", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    # The sums of the jobs recorded before this revision, by the projection's own code.
    from projections.jobs import JOB_PRINTED, JOB_TRACKED, jobs
    from projections.savings_daily import SavingsTotals
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(jobs)).scalar():
        SavingsTotals(jobs, (JOB_TRACKED, JOB_PRINTED)).fill(bind)


def downgrade() -> None:
    op.drop_table("last_prints")
    op.drop_table("savings_hourly")
    op.drop_table("savings_daily")
