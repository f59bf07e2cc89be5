"""A projection that cannot apply an event is recorded (projection_failures) and an operator can
tell it to skip that event (projection_skips); job and usage figures that multiply pages by
copies are 64-bit (a million pages times ten thousand copies overflowed INTEGER on PostgreSQL).

SQLite stores every integer in up to 8 bytes whatever its declared type, so there the columns
only change their declared type (the tables are rebuilt by alembic's batch mode).

Revision ID: 0003_projection_failures
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_projection_failures"
down_revision = "0002_identity"
branch_labels = None
depends_on = None

WIDENED = {"jobs": ("pages", "sheets", "colour_pages"),
           "usage_daily": ("pages", "sheets", "colour_pages", "jobs")}


def upgrade() -> None:
    op.create_table(
        "projection_failures",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("error", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_failed_at", sa.BigInteger, nullable=False),
        sa.Column("last_failed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "projection_skips",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger, primary_key=True),
        sa.Column("error", sa.String(300), nullable=False),
        sa.Column("skipped_at", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
    )
    _widen(sa.Integer, sa.BigInteger)


def downgrade() -> None:
    _widen(sa.BigInteger, sa.Integer)
    op.drop_table("projection_skips")
    op.drop_table("projection_failures")


def _widen(old: type, new: type) -> None:
    for table, columns in WIDENED.items():
        if op.get_bind().dialect.name == "postgresql":
            for column in columns:
                op.alter_column(table, column, existing_type=old(), type_=new(), existing_nullable=False)
        else:
            with op.batch_alter_table(table) as batch:
                for column in columns:
                    batch.alter_column(column, existing_type=old(), type_=new(), existing_nullable=False)
