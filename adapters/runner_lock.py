"""At most one projection runner per database, across processes and hosts, and a way for any
node to see whether one runs.

PostgreSQL: a session advisory lock held on a dedicated connection. SQLite (one host): an
exclusive flock on a file beside the database. Losing the race is not an error; the runner
keeps trying, so another node takes over when the holder stops. The lock is also the runner's
proof of life: the database or the kernel lets go of it the moment its holder dies, so no
heartbeat can go stale and no clock is compared.
"""
from __future__ import annotations

import fcntl
import os
import threading
import zlib
from pathlib import Path

import sqlalchemy as sa

from adapters.stores import is_postgres, parse_database_url, pg_connect

RUNNER_LOCK_KEY = zlib.crc32(b"pageledger-projections")  # a PostgreSQL advisory lock key


def _runner_lock_path(url: str) -> Path:
    return Path(parse_database_url(url).database + ".projections.lock")


class RunnerLock:
    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self._conn = None
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def acquire(self) -> bool:
        with self._mutex:
            if self._conn is not None or self._fd is not None:
                return True
            if is_postgres(self.url):
                conn = pg_connect(self.url)
                if conn.execute("SELECT pg_try_advisory_lock(%s)", (RUNNER_LOCK_KEY,)).fetchone()[0]:
                    self._conn = conn
                    return True
                conn.close()
                return False
            fd = os.open(_runner_lock_path(self.url), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def runner_lock_is_held(url: str, engine: sa.Engine) -> bool:
    """Whether a projection runner holds the runner lock right now, on any node.

    PostgreSQL: one look at pg_locks, from any node. SQLite: a shared flock taken and dropped at
    once; a runner trying to start in that instant waits for its next attempt (two seconds).
    """
    if is_postgres(url):
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid::bigint = CAST(:key AS bigint) >> 32"
                " AND objid::bigint = CAST(:key AS bigint) & 4294967295 AND objsubid = 1)"),
                {"key": RUNNER_LOCK_KEY}).scalar())
    try:
        fd = os.open(_runner_lock_path(url), os.O_RDONLY)
    except FileNotFoundError:
        return False  # no runner ever ran here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
