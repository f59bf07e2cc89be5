"""One database URL picks the store: the event store's environment and the read-model engine."""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from adapters.sqlite_writes import write_lock


class StoreConfigError(ValueError):
    """The database URL, or the database it names, cannot be used as asked."""


def parse_database_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several types
        raise StoreConfigError(f"database URL {url!r} is not valid: {exc}") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreConfigError(
            f"database URL {url!r}: only sqlite:///FILE and postgresql://... are supported"
        )
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        raise StoreConfigError("a SQLite database URL needs a file: sqlite:///path/to/pageledger.db")
    return parsed


def event_store_env(url: str) -> dict[str, str]:
    """The eventsourcing environment for the store named by `url`."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "APPLICATION_RECORDER_TOPIC": "adapters.sqlite_writes:LockingSQLiteRecorder",
            "SQLITE_DBNAME": parsed.database,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": "adapters.pg_recorder:ArrayInsertRecorder",
        "POSTGRES_DBNAME": parsed.database or "pageledger",
        "POSTGRES_HOST": parsed.host or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": parsed.username or "postgres",
        "POSTGRES_PASSWORD": parsed.password or "",
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
    }


def read_model_engine(url: str, *, writer: bool = False) -> sa.Engine:
    """SQLAlchemy engine for the read models, in the same database as the events.

    On SQLite a `writer` engine (projections) starts every transaction with BEGIN IMMEDIATE,
    taking the write lock at once so a batch never fails half-way with "database is locked";
    readers use deferred transactions and, in WAL mode, never block the writers.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    return sa.create_engine(parsed.set(drivername="postgresql+psycopg"), pool_size=5, max_overflow=5,
                            pool_pre_ping=True)


def writes_lock(url: str) -> AbstractContextManager:
    """What a read-model writer holds around each write transaction: PageLedger's SQLite
    write lock (see adapters.sqlite_writes), nothing on PostgreSQL."""
    parsed = parse_database_url(url)
    return write_lock(parsed.database) if parsed.get_backend_name() == "sqlite" else nullcontext()


def is_postgres(url: str) -> bool:
    return parse_database_url(url).get_backend_name() == "postgresql"
