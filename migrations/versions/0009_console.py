"""The web console's revoked sessions (adapters.session_revocations): logout ends a session
server-side, not only in the browser that logged out.

Revision ID: 0009_console
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_console"
down_revision = "0005_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("expires", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_revoked_sessions_expires", "revoked_sessions", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_revoked_sessions_expires", table_name="revoked_sessions")
    op.drop_table("revoked_sessions")
