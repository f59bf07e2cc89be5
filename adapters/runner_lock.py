"""At most one projection runner per database, across processes and hosts.

PostgreSQL: a session advisory lock held on a dedicated connection. SQLite (one host): an
exclusive flock on a file beside the database. Losing the race is not an error; the runner
keeps trying, so another node takes over when the holder stops.
"""
from __future__ import annotations

import fcntl
import os
import threading
import zlib
from pathlib import Path

import psycopg

from adapters.stores import is_postgres, parse_database_url


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
                parsed = parse_database_url(self.url)
                conn = psycopg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                                       dbname=parsed.database, user=parsed.username or "postgres",
                                       password=parsed.password or "", autocommit=True)
                key = zlib.crc32(b"pageledger-projections")
                if conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                    self._conn = conn
                    return True
                conn.close()
                return False
            path = Path(parse_database_url(self.url).database + ".projections.lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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
