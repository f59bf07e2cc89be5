"""Held jobs' housekeeping: expiry (every minute) and the orphaned spool sweep (hourly).

Both are queries over the read model (projections.held_jobs), never a timer or a thread per
job: a server holding 100,000 jobs starts as fast as an empty one, and a pass costs one
indexed query when nothing is due. Safe on several nodes at once: expiring a job twice
records it once (the aggregate refuses), and the sweep removes only files that no waiting job
names and that are older than `grace_seconds` (a file just uploaded may not be projected yet).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa

from adapters.spool import SpoolStore
from commands.release import ExpireJobs
from projections.held_jobs import expired_job_ids, spools_in_use

log = logging.getLogger("pageledger.release")

EXPIRY_EVERY_SECONDS = 60.0
SWEEP_EVERY_SECONDS = 3600.0
SWEEP_GRACE_SECONDS = 3600.0


@dataclass
class SweepReport:
    files: int
    removed: int
    bytes_removed: int


def sweep_orphaned_spools(reader: sa.Engine, spool: SpoolStore, *, grace_seconds: float = SWEEP_GRACE_SECONDS,
                          now: float | None = None) -> SweepReport:
    """Remove spool files no job that may still print refers to (older than the grace period)."""
    now = time.time() if now is None else now
    stored = [(digest, mtime) for digest, mtime in spool.stored() if mtime <= now - grace_seconds]
    with reader.connect() as conn:
        needed = spools_in_use(conn, [d for d, _ in stored])
    removed = bytes_removed = 0
    for digest, _ in stored:
        if digest in needed:
            continue
        try:
            size = spool.path(digest).stat().st_size
        except FileNotFoundError:
            continue
        if spool.remove(digest):
            removed += 1
            bytes_removed += size
    total = sum(1 for _ in spool.stored())
    if removed:
        log.warning("spool sweep removed %d orphaned files (%d bytes) that no held job refers to",
                    removed, bytes_removed, extra={"removed": removed, "bytes": bytes_removed})
    else:
        log.info("spool sweep: %d files, none orphaned", total)
    return SweepReport(total, removed, bytes_removed)


class ReleaseHousekeeping:
    """Called often (each pass of the projection process); does each task when it is due."""

    def __init__(self, reader: sa.Engine, expire: ExpireJobs, spool: SpoolStore, clock: Callable[[], int],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.expire = expire
        self.spool = spool
        self.clock = clock
        self.monotonic = monotonic
        self._next_expiry = 0.0
        self._next_sweep = monotonic() + 60.0  # not in the first minute of a start: let projections catch up

    def expire_due(self) -> int:
        total = 0
        while True:
            with self.reader.connect() as conn:
                due = expired_job_ids(conn, self.clock(), limit=500)
            if not due:
                return total
            expired = self.expire(due)
            total += expired
            if expired < len(due):  # the read model lags behind: the rest next time
                return total

    def tick(self) -> None:
        now = self.monotonic()
        try:
            if now >= self._next_expiry:
                self._next_expiry = now + EXPIRY_EVERY_SECONDS
                self.expire_due()
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_EVERY_SECONDS
                sweep_orphaned_spools(self.reader, self.spool)
        except Exception:  # housekeeping must never stop the process it runs in
            log.exception("held-job housekeeping failed; trying again at its next turn")
