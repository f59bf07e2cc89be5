"""One database URL picks the store: the event store's environment and the read-model engine."""
from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from adapters.private_files import PRIVATE_FILE, make_private_directory, make_private_file, restrict_if_present
from adapters.sqlite_writes import write_lock

log = logging.getLogger("pageledger.privacy")


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
        prepare_private_sqlite_file(Path(parsed.database))
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


def prepare_private_sqlite_file(path: Path) -> None:
    """Make the database file 0600 before SQLite opens it: SQLite would create it 0644 (less
    the umask), and it gives its -wal and -shm files the database file's mode. A missing
    directory for it is created 0700; an existing one is not ours to change."""
    if not path.parent.is_dir():
        make_private_directory(path.parent)
    make_private_file(path)
    for suffix in ("-wal", "-shm"):
        restrict_if_present(Path(f"{path}{suffix}"), PRIVATE_FILE)


def read_model_engine(url: str, *, writer: bool = False) -> sa.Engine:
    """SQLAlchemy engine for the read models, in the same database as the events.

    On SQLite a `writer` engine (projections) starts every transaction with BEGIN IMMEDIATE,
    taking the write lock at once so a batch never fails half-way with "database is locked";
    readers use deferred transactions and, in WAL mode, never block the writers.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        prepare_private_sqlite_file(Path(parsed.database))
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


# A database is PageLedger's when it holds the event store or the read-model schema.
PAGELEDGER_TABLES = ("stored_events", "alembic_version")


def database_exists(url: str) -> bool:
    """Whether `url` names a PageLedger database. Creates nothing: no file, no directory, no
    database. A missing or empty SQLite file, a missing PostgreSQL database and one without
    PageLedger's tables all count as missing. A PostgreSQL server that cannot be reached is a
    StoreConfigError, not a missing database."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_database_exists(Path(parsed.database))
    return _postgres_database_exists(parsed)


def _sqlite_database_exists(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    # mode=rw never creates the file; a read-only connection would leave -wal and -shm behind.
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    except sqlite3.OperationalError:
        return False
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:  # not a SQLite file at all
        return False
    finally:
        conn.close()
    return bool(names & set(PAGELEDGER_TABLES))


def _postgres_database_exists(parsed: URL) -> bool:
    parsed = parsed.set(database=parsed.database or "pageledger")  # the event store's default
    engine = sa.create_engine(parsed.set(drivername="postgresql+psycopg"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return any(conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar()
                       for table in PAGELEDGER_TABLES)
    except sa.exc.OperationalError as exc:
        # A missing database and an unreachable server fail alike (no SQLSTATE before the
        # session starts): ask the server's catalogue which it is.
        if _postgres_server_lacks_database(parsed):
            return False
        raise StoreConfigError(f"cannot connect to the {describe_database(parsed)}: {exc.orig}") from None
    finally:
        engine.dispose()


def _postgres_server_lacks_database(parsed: URL) -> bool:
    engine = sa.create_engine(parsed.set(drivername="postgresql+psycopg", database="postgres"),
                              poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": parsed.database}).first() is None
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def describe_database(url: str | URL) -> str:
    """Where a database URL points, for a person, without its password."""
    parsed = parse_database_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {Path(parsed.database).resolve()}"
    return (f"PostgreSQL database {parsed.database or 'pageledger'} on "
            f"{parsed.host or '127.0.0.1'}:{parsed.port or 5432}")


EVENT_STORE_DDL_LOCK_KEY = zlib.crc32(b"pageledger-event-store-ddl")  # a PostgreSQL advisory lock key


def pg_connect(url: str) -> psycopg.Connection:
    """A plain autocommit connection to the PostgreSQL database of `url` (for advisory locks)."""
    parsed = parse_database_url(url)
    return psycopg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                           dbname=parsed.database, user=parsed.username or "postgres",
                           password=parsed.password or "", autocommit=True)


@contextmanager
def event_store_ddl_in_turn(url: str) -> Iterator[None]:
    """Opening the event store runs its DDL (`CREATE OR REPLACE FUNCTION` among it) in every
    process; on PostgreSQL two at once fail with "tuple concurrently updated", and the web
    workers and the projection runner all open it at the same moment. They take turns."""
    if not is_postgres(url):
        yield  # SQLite serialises its own DDL
        return
    with pg_connect(url) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (EVENT_STORE_DDL_LOCK_KEY,))
        yield  # closing the connection lets go of the lock


def rewrite_freed_pages(url: str, tables: list[str]) -> None:
    """Leave no old copy of deleted or updated rows in the database files (after an erasure):
    SQLite is checkpointed, VACUUMed and checkpointed again (the WAL file truncated), under the
    write lock; on PostgreSQL each of `tables` is rewritten (VACUUM FULL)."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        with write_lock(parsed.database):
            conn = sqlite3.connect(parsed.database, isolation_level=None, timeout=30)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
        return
    with pg_connect(url) as conn:
        _wait_for_older_snapshots(conn)
        for table in tables:
            conn.execute(f'VACUUM FULL "{table}"')


# How long an erasure waits for transactions that may still see the erased rows.
OLDER_SNAPSHOTS_WAIT_S = 120.0


def _wait_for_older_snapshots(conn: psycopg.Connection, wait_s: float = OLDER_SNAPSHOTS_WAIT_S) -> None:
    """VACUUM FULL copies a row version that some open transaction may still see, and such a
    transaction can be in any database of the server (a long report or COPY elsewhere): wait
    until every transaction that was open when the erasure committed has ended, so that the
    rewrite leaves no old copy behind. After `wait_s` it goes on, and says which are open."""
    horizon = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()[0]
    deadline = time.monotonic() + wait_s
    while True:
        oldest = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetchone()[0]
        older = conn.execute(
            "SELECT pid, datname FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL "
            "AND age(backend_xmin) > age(((%s::bigint %% 4294967296)::text)::xid)", (horizon,)).fetchall()
        if oldest >= horizon and not older:
            return
        if time.monotonic() >= deadline:
            log.warning("erasure: %d transaction(s) opened before the erasure are still running (%s); old copies "
                        "of the erased rows may stay in the database files until they end and the tables are "
                        "rewritten again (VACUUM FULL)", len(older),
                        ", ".join(f"pid {pid} on {db}" for pid, db in older[:5]) or "writers")
            return
        time.sleep(0.2)
