"""Identity and licensing read models (users, licence terms, seats, denials, login audit) and
the login throttle's working table.

Revision ID: 0002_identity
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_identity"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("login", sa.String(255), nullable=False),
        sa.Column("login_key", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("deactivated_reason", sa.String(32), nullable=False),
        sa.Column("card", sa.String(64), nullable=False),
        sa.Column("pin_digest", sa.String(64), nullable=False),
        sa.Column("has_password", sa.Boolean, nullable=False),
        sa.Column("full_name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("department", sa.String(255), nullable=False),
        sa.Column("imported_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("source", "login_key", name="uq_users_source_login"),
    )
    op.create_index("ix_users_login_key", "users", ["login_key"])
    op.create_index("ix_users_card", "users", ["card"])
    op.create_index("ix_users_pin_digest", "users", ["pin_digest"])
    op.create_table(
        "licence_state",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("seats", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("installed_at", sa.BigInteger, nullable=False),
        sa.Column("activated_at", sa.BigInteger, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("company", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("track_unlicensed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "licence_seats",
        sa.Column("login_key", sa.String(255), primary_key=True),
        sa.Column("assigned_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "seat_denials",
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("login_key", sa.String(255), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "login_audit",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("login", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=False),
    )
    op.create_index("ix_login_audit_login_at", "login_audit", ["login", "at"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_login_failures_key_at", "login_failures", ["key", "at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])


def downgrade() -> None:
    for table in ("login_failures", "login_audit", "seat_denials", "licence_seats", "licence_state", "users"):
        op.drop_table(table)
