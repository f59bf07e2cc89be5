"""Durable local outbox of job events not yet acknowledged by the server (SQLite, fsync'd).

A job is written here *before* it is posted and removed only after the server answered for
it, so a crash, restart or time-out at any point leaves it in the outbox; re-posting is safe
because the server treats a known ``job_key`` as a duplicate. The outbox therefore never
loses a job and never makes the server count one twice.

A job the server rejects as malformed (HTTP 400) would block every later batch; it moves to
a ``rejected`` table with the server's reason (kept for an admin, never silently dropped).
A job the server answers as a ``conflict`` (its key was recorded with other figures) is
accounted for already, as recorded: it leaves the outbox like any answered job, with a
warning naming it, and is never re-posted (it would only conflict again).
Several backends (one per printing queue) may run at once: flushing takes a file lock so one
process at a time posts the backlog.
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from agent.server import JobResult, ServerRejectedJobs, ServicesClient

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


class FlushReport(NamedTuple):
    """What one flush did."""

    sent: int
    rejected: int
    remaining: int
    skipped_locked: bool = False


class Outbox:
    """Job records waiting for the server's answer, the rejected ones, and held/denied decisions."""

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None):
        """`warn` tells what needs an admin's eye (the backend's CUPS log, the CLI's stderr)."""
        self.path = Path(path)
        self._warn = warn or (lambda message: None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, job: dict) -> None:
        """Keep ``job`` until the server acknowledges it (a second add of the same key is a no-op)."""
        self._db.execute("INSERT OR IGNORE INTO outbox (job_key, payload, queued_at) VALUES (?, ?, ?)",
                         (job["job_key"], json.dumps(job, separators=(",", ":")), time.time()))

    def remove(self, job_keys: list[str]) -> None:
        with self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE job_key = ?", [(k,) for k in job_keys])

    def pending(self, limit: int, exclude: tuple[str, ...] = ()) -> list[dict]:
        rows = self._db.execute("SELECT payload FROM outbox ORDER BY seq LIMIT ?", (limit + len(exclude),)).fetchall()
        jobs = [json.loads(row[0]) for row in rows]
        return [job for job in jobs if job["job_key"] not in exclude][:limit]

    def count(self) -> int:
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

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def flush_lock(self) -> Iterator[bool]:
        """Yields True when this process holds the flush lock, False when another one does."""
        fd = os.open(str(self.path) + ".flush-lock", os.O_RDWR | os.O_CREAT, 0o600)
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
        return FlushReport(sent, rejected, self.count())


def _conflict_line(result: JobResult) -> str:
    differing = ", ".join(result.fields) or result.message or "which ones not told"
    return (f"PageLedger: the server already recorded job {result.job_key} with other figures ({differing}); "
            f"it stays as recorded: removed from the outbox, not re-posted")
