"""The licence's seats over time and printers in error.

- `seat_tenures`: one row per seat taken (who, when, when and why it was given back) and
  `seat_allowance`: the seats allowed from each change of the licence's terms
  (projections/seat_tenures.py), for the licence usage report's seats per day.
- `printer_errors`: one row per period a CUPS printer was stopped or in error, as the release
  service reported it (projections/printer_errors.py), for the workflow issues report.

All three are filled by their projections from the log: on a site that already has events, the
projection runner builds them from the first event on (they start at position 0).

Revision ID: 0015_seat_printer_history
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_seat_printer_history"
down_revision = "0014_lean_jobs_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seat_tenures",
        sa.Column("login_key", sa.String(255), primary_key=True),
        sa.Column("taken_at", sa.BigInteger, primary_key=True),
        sa.Column("released_at", sa.BigInteger, nullable=True),
        sa.Column("ended_by", sa.String(100), nullable=False),
    )
    op.create_index("ix_seat_tenures_taken_at", "seat_tenures", ["taken_at"])
    op.create_table(
        "seat_allowance",
        sa.Column("changed_at", sa.BigInteger, primary_key=True),
        sa.Column("seats", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
    )
    op.create_table(
        "printer_errors",
        sa.Column("printer", sa.String(255), primary_key=True),
        sa.Column("started_at", sa.BigInteger, primary_key=True),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.Column("reasons", sa.String(1000), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
    )
    op.create_index("ix_printer_errors_started_at", "printer_errors", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_printer_errors_started_at", table_name="printer_errors")
    op.drop_table("printer_errors")
    op.drop_table("seat_allowance")
    op.drop_index("ix_seat_tenures_taken_at", table_name="seat_tenures")
    op.drop_table("seat_tenures")
