"""One writer at a time on the embedded SQLite store, queued in the kernel, not in sleeps.

SQLite allows one write transaction at a time; a writer that finds the database locked
retries in SQLite's busy handler, which sleeps 1, 2, 5, 10 … 100 ms between tries. With the
web workers and the projection process writing concurrently, those sleeps were the tail of
the request latency. Every PageLedger writer (the event store's inserts, the projections'
transactions) first takes an exclusive `flock` on a file beside the database: waiters block
in the kernel and wake the moment the holder releases.
"""
from __future__ import annotations

import fcntl
import os
import threading
from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from adapters.event_seals import sqlite_create_statement, sqlite_seal
from adapters.personal_keys import sqlite_create_statements as personal_keys_statements

_locks: dict[str, "WriteLock"] = {}
_registry_guard = threading.Lock()


class WriteLock:
    """Exclusive across processes (flock) and across threads of this process (a mutex:
    flock alone does not exclude two threads sharing one open file)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> None:
        self._mutex.acquire()
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def __enter__(self) -> "WriteLock":
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def write_lock(database_path: str) -> WriteLock:
    """The process's one WriteLock for the database at `database_path`."""
    key = os.path.abspath(database_path)
    with _registry_guard:
        if key not in _locks:
            _locks[key] = WriteLock(key + ".writer.lock")
        return _locks[key]


class LockingSQLiteRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, taking PageLedger's write lock around each insert and
    sealing each insert's events in the same transaction (adapters.event_seals)."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), sqlite_create_statement(self.events_table_name),
                *personal_keys_statements(self.events_table_name)]

    ROWS_A_STATEMENT = 500  # 2,000 parameters, well under SQLite's 32,766

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        """The library's insert (the same rows, notification ids being their rowids) in one
        statement for up to ROWS_A_STATEMENT events instead of one statement each, which was a
        fifth of recording a migrated job. RETURNING gives each row's id with its originator
        and version (SQLite does not promise the order of RETURNING rows), matched back to
        the events. A duplicate (originator, version) fails the statement as it failed the
        row (IntegrityError) and the transaction is rolled back."""
        ids: list[int] = []
        for start in range(0, len(stored_events), self.ROWS_A_STATEMENT):
            part = stored_events[start:start + self.ROWS_A_STATEMENT]
            params: list[Any] = []
            keys = []
            for s in part:
                oid = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
                params += (oid, s.originator_version, s.topic, s.state)
                keys.append((oid, s.originator_version))
            c.execute(f"INSERT INTO {self.events_table_name} VALUES {', '.join(['(?,?,?,?)'] * len(part))} "
                      "RETURNING rowid, originator_id, originator_version", params)
            found = {(oid, version): rowid for rowid, oid, version in c.fetchall()}
            ids.extend(found[k] for k in keys)
        return ids

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with write_lock(self.datastore.pool.db_name), self.datastore.transaction(commit=True) as c:
            ids = self._insert_events(c, stored_events, **kwargs)
            if stored_events:
                sqlite_seal(c, self.events_table_name, ids, stored_events)
            return ids
