"""Read-model tables (SQLAlchemy Core). The schema is created and upgraded by migrations/.

Rows are narrow on purpose: int ids for users and printers, money as int 1/10,000 units,
times as int µs since the epoch. Jobs are keyed by the notification id of their event, which
is also the "job number" the API shows.
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

projection_tracking = sa.Table(
    "projection_tracking", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

user_keys = sa.Table(
    "user_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("login", sa.String(255), nullable=False, unique=True),
)

printer_keys = sa.Table(
    "printer_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
)

host_keys = sa.Table(
    "host_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
)

# status codes of a job row
JOB_TRACKED = 0
JOB_DENIED = 1

# On SQLite an INTEGER PRIMARY KEY is the rowid itself: no second copy, no extra index.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Columns ordered widest first so PostgreSQL wastes nothing on alignment padding.
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("seq", RowId, primary_key=True, autoincrement=False),
    sa.Column("submitted_at", sa.BigInteger, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.BigInteger, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("printer_id", sa.Integer, nullable=False),
    sa.Column("host_id", sa.Integer, nullable=False),
    sa.Column("pages", sa.Integer, nullable=False),
    sa.Column("sheets", sa.Integer, nullable=False),
    sa.Column("colour_pages", sa.Integer, nullable=False),
    sa.Column("copies", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("duplex", sa.Boolean, nullable=False),
    sa.Column("paper", sa.String(32), nullable=False),
    sa.Column("pdl", sa.String(16), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    # A user's own jobs, newest first, keyset-paged: the most frequent query (the user portal).
    sa.Index("ix_jobs_user_seq", "user_id", "seq"),
    # By printer: few distinct keys, so PostgreSQL's btree deduplication keeps this ~7 B a job.
    sa.Index("ix_jobs_printer", "printer_id"),
)

usage_daily = sa.Table(
    "usage_daily", metadata,
    sa.Column("day", sa.Integer, primary_key=True),  # days since 1970-01-01 (UTC)
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("printer_id", sa.Integer, primary_key=True),
    sa.Column("pages", sa.Integer, nullable=False),  # impressions, all copies
    sa.Column("sheets", sa.Integer, nullable=False),
    sa.Column("colour_pages", sa.Integer, nullable=False),
    sa.Column("jobs", sa.Integer, nullable=False),
    sa.Column("cost", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

access_tokens = sa.Table(
    "access_tokens", metadata,
    sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("token_id", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
)
