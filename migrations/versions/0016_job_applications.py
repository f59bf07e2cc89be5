"""The application each job was printed from: a key table of application names and a 2-byte id
on each jobs row (`app_id`, 0 when the agent could not tell), for the habits report.

Jobs recorded before this revision carry no application (their events decode it as ""), so
every existing row takes 0. On PostgreSQL the column is added with a constant default, which
rewrites nothing; on SQLite alembic's batch mode adds it.

Revision ID: 0016_job_applications
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_job_applications"
down_revision = "0015_seat_printer_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "application_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("app_id", sa.SmallInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("app_id")
    op.drop_table("application_keys")
