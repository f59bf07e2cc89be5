"""Queries on held jobs (the `held_jobs` table the jobs projection keeps): a user's waiting jobs,
the release service's orders, what has expired, which spool files are still needed.

Every one is an indexed query: nothing per held job is loaded at start or kept in memory, so a
restart with 100,000 held jobs costs what one with none does (bench/release_bench.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import sqlalchemy as sa

from projections.jobs import (JOB_FAILED, JOB_HELD, JOB_RELEASED, STATUS_NAMES, WAITING, held_jobs, jobs)
from projections.names import printer_keys, user_keys

# A spool file is needed while its job may still be printed.
NEEDS_DATA = (JOB_HELD, JOB_FAILED, JOB_RELEASED)


@dataclass(frozen=True)
class HeldJob:
    job_id: str
    number: int  # the job's number in /api/v1/jobs
    user: str
    printer: str  # the queue it was sent to
    document: str
    submitted_at: int  # µs
    expires_at: int  # µs
    pages: int
    copies: int
    sheets: int
    cost: int  # 1/10,000, as priced on its own queue (what it costs if printed there)
    status: str
    has_data: bool
    spool: str
    size: int
    code_digest: str
    released_to: str
    released_by: str
    reason: str
    changed_at: int  # µs, its last lifecycle event (for a released job: when it was released)


def _select() -> sa.Select:
    h = held_jobs
    return (sa.select(h.c.job_id, h.c.seq, user_keys.c.login, printer_keys.c.name, jobs.c.document,
                      jobs.c.submitted_at, h.c.expires_at, jobs.c.pages, jobs.c.copies, jobs.c.sheets, jobs.c.cost,
                      h.c.status, h.c.has_data, h.c.spool, jobs.c.size, h.c.code_digest, h.c.released_to,
                      h.c.released_by, h.c.reason, h.c.changed_at)
            .join(jobs, jobs.c.seq == h.c.seq)
            .join(user_keys, user_keys.c.id == h.c.user_id)
            .join(printer_keys, printer_keys.c.id == h.c.printer_id))


def _row(r: sa.Row) -> HeldJob:
    return HeldJob(r.job_id, r.seq, r.login, r.name, r.document, r.submitted_at, r.expires_at, r.pages, r.copies,
                   r.sheets, r.cost, STATUS_NAMES[r.status], bool(r.has_data), r.spool, r.size, r.code_digest,
                   r.released_to, r.released_by, r.reason, r.changed_at)


def waiting_jobs(conn: sa.Connection, user: str | None, *, printer: str | None = None, limit: int = 1000) -> list[HeldJob]:
    """Held (and failed, releasable again) jobs, oldest first; `user` None: everyone's (admins)."""
    q = _select().where(held_jobs.c.status.in_(WAITING))
    if user is not None:
        q = q.where(user_keys.c.login == user)
    if printer is not None:
        q = q.where(printer_keys.c.name == printer)
    return [_row(r) for r in conn.execute(q.order_by(held_jobs.c.seq).limit(limit))]


def waiting_count(conn: sa.Connection) -> int:
    """How many jobs wait for release, everyone's (the console's dashboard shows it)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(held_jobs)
                            .where(held_jobs.c.status.in_(WAITING))).scalar_one())


def held_job(conn: sa.Connection, job_id: str) -> HeldJob | None:
    r = conn.execute(_select().where(held_jobs.c.job_id == job_id)).first()
    return _row(r) if r is not None else None


def release_orders(conn: sa.Connection, limit: int = 100, *, printers: list[str] | None = None) -> list[HeldJob]:
    """Released jobs the release service has not reported printed or failed, oldest first; with
    `printers`, only those to print there (CUPS queue names: any case)."""
    q = _select().where(held_jobs.c.status == JOB_RELEASED).order_by(held_jobs.c.changed_at, held_jobs.c.seq)
    if printers is not None:
        where = sa.func.coalesce(sa.func.nullif(held_jobs.c.released_to, ""), printer_keys.c.name)
        q = q.where(sa.func.lower(where).in_(sorted({p.lower() for p in printers})))
    return [_row(r) for r in conn.execute(q.limit(limit))]


def expired_job_ids(conn: sa.Connection, now: int, limit: int = 1000) -> list[str]:
    """Waiting jobs whose hold time is over (index on status, expires_at)."""
    q = (sa.select(held_jobs.c.job_id).where(held_jobs.c.status.in_(WAITING))
         .where(held_jobs.c.expires_at <= now).order_by(held_jobs.c.expires_at).limit(limit))
    return list(conn.execute(q).scalars())


def spools_in_use(conn: sa.Connection, digests: Iterable[str], excluded: set[str] = frozenset()) -> set[str]:
    """Which of `digests` a job that may still print refers to (same data, one file), leaving
    out the jobs `excluded` (just deleted, expired or printed: the read model may lag)."""
    wanted = list(digests)
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        q = (sa.select(held_jobs.c.spool, held_jobs.c.job_id).where(held_jobs.c.spool.in_(chunk))
             .where(held_jobs.c.status.in_(NEEDS_DATA)))
        found |= {spool for spool, job_id in conn.execute(q) if job_id not in excluded}
    return found
