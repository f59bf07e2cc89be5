"""Durable local outbox of job events not yet acknowledged by the server (SQLite, fsync'd).

A job is written here *before* it is posted and removed only after the server answered for
it, so a crash, restart or time-out at any point leaves it in the outbox; re-posting is safe
because the server treats a known ``job_key`` as a duplicate. The outbox therefore never
loses a job and never makes the server count one twice.

A job being printed is first written to its own file in ``outbox.sqlite3.pending/`` (fsync'd,
with its directory): two fsyncs, where a SQLite insert and delete cost a backend process five
or more and ~20 ms (issue 19). The answered job's file is unlinked, and SQLite is not opened at
all unless there is a backlog (``outbox.sqlite3.backlog`` marks one). A job still unanswered
when the outbox is closed (the server cannot be reached) moves into SQLite; so does the file
of a process that died before the answer (its pid gone, or the file older than
``ORPHAN_AGE``), when the database is next opened.

A job the server rejects as malformed (HTTP 400) would block every later batch; it moves to
a ``rejected`` table with the server's reason (kept for an admin, never silently dropped).
A job the server answers as a ``conflict`` (its key was recorded with other figures) is
accounted for already, as recorded: it leaves the outbox like any answered job, with a
warning naming it, and is never re-posted (it would only conflict again).
Several backends (one per printing queue) may run at once: flushing takes a file lock so one
process at a time posts the backlog.
"""
from __future__ import annotations

import json
import os
import time
from collections import namedtuple
from contextlib import contextmanager

from agent.server import JobResult, ServerRejectedJobs, ServicesClient

# A pending file older than this is no job in flight (a job's file lives from its count to
# the server's answer: ServerTimeout, a few seconds), whatever its pid says.
ORPHAN_AGE = 600.0
# This process's pending files (those of every Outbox it opened and has not closed).
_IN_FLIGHT: set[str] = set()

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS decisions (
    job_key TEXT PRIMARY KEY,
    decision TEXT NOT NULL,
    job_id TEXT NOT NULL,
    decided_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    job_key TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    rejected_at REAL NOT NULL
);
"""


class FlushReport(namedtuple("FlushReport", "sent rejected remaining skipped_locked", defaults=(False,))):
    """What one flush did."""

    __slots__ = ()


class Outbox:
    """Job records waiting for the server's answer, the rejected ones, and held/denied decisions."""

    def __init__(self, path, warn=None):
        """`warn` tells what needs an admin's eye (the backend's CUPS log, the CLI's stderr)."""
        self.path = os.fspath(path)  # a str: a backend process does not import pathlib
        self._warn = warn or (lambda message: None)
        self._pending_dir = self.path + ".pending"
        self._backlog_mark = self.path + ".backlog"
        self._handle = None
        self._files: dict[str, str] = {}  # job_key -> this outbox's pending file
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)

    @property
    def _db(self):
        """The SQLite database, opened (and orphaned pending files adopted) on first use."""
        if self._handle is None:
            import sqlite3  # not for a job the server answers at once: only for a backlog

            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
            self._handle = db
            self._adopt_orphans()
        return self._handle

    def close(self) -> None:
        if self._files:
            self.queue_pending()
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, job: dict) -> None:
        """Keep ``job`` until the server acknowledges it (a second add of the same key is a no-op):
        written to its own pending file and fsync'd before this returns."""
        key = job["job_key"]
        if key in self._files:
            return
        if not os.path.isdir(self._pending_dir):
            os.makedirs(self._pending_dir, mode=0o700, exist_ok=True)
            _fsync_directory(os.path.dirname(self.path) or ".")
        path = os.path.join(self._pending_dir, f"{os.getpid()}-{time.monotonic_ns()}.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, json.dumps(job, separators=(",", ":")).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_directory(self._pending_dir)
        self._files[key] = path
        _IN_FLIGHT.add(path)

    def remove(self, job_keys: list[str]) -> None:
        """Forget answered jobs. A pending file is unlinked unsynced: should the unlink be lost
        (a power cut), the job is posted again and the server answers it as a duplicate."""
        for key in job_keys:
            self._drop_file(key)
        if self._handle is not None:
            with self._transaction():
                self._db.executemany("DELETE FROM outbox WHERE job_key = ?", [(k,) for k in job_keys])

    def _drop_file(self, key: str) -> None:
        path = self._files.pop(key, None)
        if path is not None:
            _IN_FLIGHT.discard(path)
            _unlink(path)

    def queue_pending(self) -> None:
        """Move this outbox's unanswered jobs from their files into the database (the backlog)."""
        files = list(self._files.values())
        self._files.clear()
        self._enqueue_files(files)
        for path in files:
            _IN_FLIGHT.discard(path)

    def has_backlog(self) -> bool:
        """Whether older jobs may wait to be posted (without opening the database when none do)."""
        if os.path.exists(self._backlog_mark):
            return True
        try:
            names = os.listdir(self._pending_dir)
        except FileNotFoundError:
            return False
        own = {os.path.basename(path) for path in self._files.values()}
        return any(name.endswith(".json") and name not in own for name in names)

    def _enqueue_files(self, paths: list[str]) -> None:
        records = []
        for path in paths:
            try:
                with open(path, "rb") as handle:
                    job = json.loads(handle.read())
                records.append((job["job_key"], json.dumps(job, separators=(",", ":")), os.stat(path).st_mtime))
            except FileNotFoundError:
                continue  # adopted by another process meanwhile
            except (ValueError, KeyError, TypeError):
                self._warn(f"PageLedger: outbox file {path} is not a job record: kept aside as {path}.bad")
                os.replace(path, path + ".bad")
        if records:
            with self._transaction():
                self._db.executemany("INSERT OR IGNORE INTO outbox (job_key, payload, queued_at) VALUES (?, ?, ?)",
                                     records)
            _touch(self._backlog_mark)
        for path in paths:
            _unlink(path)

    def _adopt_orphans(self) -> None:
        """Move the pending files of processes that died before their answer into the database."""
        try:
            names = os.listdir(self._pending_dir)
        except FileNotFoundError:
            return
        orphans = []
        now = time.time()
        for name in names:
            path = os.path.join(self._pending_dir, name)
            if not name.endswith(".json") or path in _IN_FLIGHT:
                continue
            pid_text = name.split("-", 1)[0]
            try:
                old = now - os.stat(path).st_mtime > ORPHAN_AGE
            except FileNotFoundError:
                continue
            if old or not pid_text.isdigit() or int(pid_text) == os.getpid() or not _alive(int(pid_text)):
                orphans.append(path)
        if orphans:
            self._enqueue_files(sorted(orphans, key=_mtime))

    def _note_backlog_left(self) -> int:
        """The backlog's size; the backlog mark goes when it is empty (unlinked first, then
        counted: a job queued meanwhile by another process marks it again)."""
        _unlink(self._backlog_mark)
        left = self.count()
        if left:
            _touch(self._backlog_mark)
        return left

    def pending(self, limit: int, exclude: tuple[str, ...] = ()) -> list[dict]:
        if self._files:
            self.queue_pending()
        rows = self._db.execute("SELECT payload FROM outbox ORDER BY seq LIMIT ?", (limit + len(exclude),)).fetchall()
        jobs = [json.loads(row[0]) for row in rows]
        return [job for job in jobs if job["job_key"] not in exclude][:limit]

    def count(self) -> int:
        if self._files:
            self.queue_pending()
        return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def remember_decision(self, job_key: str, decision: str, job_id: str) -> None:
        """Keep a hold or deny decision: CUPS retries a job under the same key, and the server
        answers a re-post as a duplicate, which must not turn a held job into a printed one."""
        self._db.execute("INSERT OR REPLACE INTO decisions (job_key, decision, job_id, decided_at) VALUES (?, ?, ?, ?)",
                         (job_key, decision, job_id, time.time()))
        # Old decisions are of no use once CUPS has stopped retrying (days, not months).
        self._db.execute("DELETE FROM decisions WHERE decided_at < ?", (time.time() - 30 * 86400,))

    def remembered_decision(self, job_key: str) -> tuple[str, str] | None:
        """(decision, job_id) kept for ``job_key``, if any."""
        row = self._db.execute("SELECT decision, job_id FROM decisions WHERE job_key = ?", (job_key,)).fetchone()
        return (row[0], row[1]) if row else None

    def rejected(self) -> list[tuple[str, str]]:
        return self._db.execute("SELECT job_key, reason FROM rejected ORDER BY rejected_at").fetchall()

    def note_failure(self, job_keys: list[str], error: str) -> None:
        with self._transaction():
            self._db.executemany("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE job_key = ?",
                                 [(error[:500], k) for k in job_keys])

    def reject(self, job: dict, reason: str) -> None:
        """Move a job the server refuses as malformed out of the way of the others."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO rejected (job_key, payload, reason, rejected_at) VALUES (?, ?, ?, ?)",
                             (job["job_key"], json.dumps(job), reason[:1000], time.time()))
            self._db.execute("DELETE FROM outbox WHERE job_key = ?", (job["job_key"],))
        self._drop_file(job["job_key"])

    @contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def flush_lock(self):
        """Yields True when this process holds the flush lock, False when another one does."""
        import fcntl

        fd = os.open(self.path + ".flush-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def post_batch(self, client: ServicesClient, jobs: list[dict]) -> tuple[list, int]:
        """Post ``jobs``; remove every acknowledged one. Returns (results, rejected count).

        A 400 names the bad jobs: they are moved to ``rejected`` and the rest re-posted.
        ``ServerUnreachable``/``ServerRefusedToken`` propagate and leave every job here.
        """
        rejected = 0
        while jobs:
            try:
                results = client.post_jobs(jobs)
            except ServerRejectedJobs as err:
                bad = err.bad_indexes() or (set(range(len(jobs))) if len(jobs) == 1 else set())
                if not bad:
                    # The server did not say which: find out one job at a time.
                    all_results = []
                    for job in jobs:
                        results_one, rejected_one = self.post_batch(client, [job])
                        all_results += results_one
                        rejected += rejected_one
                    return all_results, rejected
                for index in sorted(bad):
                    if index < len(jobs):
                        reasons = {k: v for k, v in err.errors.items() if str(k).startswith(f"jobs.{index}.")}
                        self.reject(jobs[index], f"{err}: {json.dumps(reasons) if reasons else ''}")
                        rejected += 1
                jobs = [job for i, job in enumerate(jobs) if i not in bad]
                continue
            self.remove([job["job_key"] for job in jobs])
            for result in results:
                if result.status == "conflict":
                    self._warn(_conflict_line(result))
            return results, rejected
        return [], rejected

    def flush(self, client: ServicesClient, batch_size: int = 500, max_batches: int | None = None,
              exclude: tuple[str, ...] = ()) -> FlushReport:
        """Post the backlog in batches, oldest first, until it is empty or the server fails."""
        sent = rejected = 0
        with self.flush_lock() as locked:
            if not locked:
                return FlushReport(0, 0, self.count(), skipped_locked=True)
            batches = 0
            while max_batches is None or batches < max_batches:
                jobs = self.pending(batch_size, exclude)
                if not jobs:
                    break
                try:
                    results, rejected_now = self.post_batch(client, jobs)
                except Exception as err:
                    self.note_failure([job["job_key"] for job in jobs], str(err))
                    raise
                sent += len(results)
                rejected += rejected_now
                batches += 1
            remaining = self._note_backlog_left()
        return FlushReport(sent, rejected, remaining)


def _conflict_line(result: JobResult) -> str:
    differing = ", ".join(result.fields) or result.message or "which ones not told"
    return (f"PageLedger: the server already recorded job {result.job_key} with other figures ({differing}); "
            f"it stays as recorded: removed from the outbox, not re-posted")


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _touch(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
