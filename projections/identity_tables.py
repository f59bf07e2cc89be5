"""Read-model tables of identity and licensing (users, licence terms, seats, denials, logins).

Kept beside projections/tables.py on the same metadata; created by migration 0002_identity.
Personal fields (name, e-mail, department) are plain columns here because a read model can
always be rebuilt without them; PINs appear only as keyed digests.
"""
from __future__ import annotations

import sqlalchemy as sa

from projections.tables import metadata

users = sa.Table(
    "users", metadata,
    sa.Column("user_id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("login", sa.String(255), nullable=False),
    sa.Column("login_key", sa.String(255), nullable=False),  # lower-cased login
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
    sa.Index("ix_users_login_key", "login_key"),
    sa.Index("ix_users_card", "card"),
    sa.Index("ix_users_pin_digest", "pin_digest"),
)

# One row: the licence in force (what Administration -> Settings -> Licensing shows).
licence_state = sa.Table(
    "licence_state", metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("seats", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),  # 0 = never
    sa.Column("installed_at", sa.BigInteger, nullable=False),
    sa.Column("activated_at", sa.BigInteger, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("company", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("track_unlicensed", sa.Boolean, nullable=False),
)

licence_seats = sa.Table(
    "licence_seats", metadata,
    sa.Column("login_key", sa.String(255), primary_key=True),
    sa.Column("assigned_at", sa.BigInteger, nullable=False),
)

seat_denials = sa.Table(
    "seat_denials", metadata,
    sa.Column("day", sa.Integer, primary_key=True),  # days since 1970-01-01 UTC
    sa.Column("login_key", sa.String(255), primary_key=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
)

login_audit = sa.Table(
    "login_audit", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("login", sa.String(255), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("remote_addr", sa.String(64), nullable=False),
    sa.Index("ix_login_audit_login_at", "login", "at"),
)

# Working state of the login throttle (pageledger.sessions.LoginThrottle), not a read model:
# one row per failed attempt and key ("l:<login>", "a:<address>"), pruned after the window.
login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # Unix seconds
    sa.Index("ix_login_failures_key_at", "key", "at"),
    sa.Index("ix_login_failures_at", "at"),
)
