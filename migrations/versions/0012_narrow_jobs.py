"""Narrower jobs rows: a job's pages and colour pages (per copy) as 4-byte integers.

Each is at most 1,000,000 (checked at ingest and by the legacy migration); `pages` fills the
4 bytes of alignment padding after the three 4-byte ids, and `colour_pages` sits beside the
small integers: 12 bytes less per row on PostgreSQL (SQLite stores integers by value and is
unchanged). `sheets` (all copies) stays 8 bytes: events stored before the impressions limit
hold up to 10^10. On PostgreSQL the primary
key `jobs_pkey` (the log position: strictly increasing) is also built full (fillfactor 100):
its pages only ever split at the right edge, so the 10% the default keeps free is never used.
The types change in place; PostgreSQL rewrites the table once.

Revision ID: 0012_narrow_jobs
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_narrow_jobs"
down_revision = "0011_console_indexes"
branch_labels = None
depends_on = None

NARROWED = ("pages", "colour_pages")


def upgrade() -> None:
    _retype(sa.BigInteger, sa.Integer)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX jobs_pkey SET (fillfactor = 100)")
        op.execute("REINDEX INDEX jobs_pkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX jobs_pkey RESET (fillfactor)")
    _retype(sa.Integer, sa.BigInteger)


def _retype(old: type, new: type) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in NARROWED:
            op.alter_column("jobs", column, existing_type=old(), type_=new(), existing_nullable=False)
    else:  # SQLite: only the declared type changes (the table is rebuilt by alembic's batch mode)
        with op.batch_alter_table("jobs") as batch:
            for column in NARROWED:
                batch.alter_column(column, existing_type=old(), type_=new(), existing_nullable=False)
