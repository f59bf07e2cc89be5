"""The "Job Accounting" read model: one narrow row per tracked or denied job, and its queries.

Rows are narrow on purpose: int ids for users, printers and hosts (projections.names), money
as int 1/10,000 units, times as int µs since the epoch (domain.units). Jobs are keyed by the
notification id of their event, which is also the "job number" the API shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.jobs import PrintJob
from domain.units import MICROS_PER_DAY
from projections.follower import Projection, metadata
from projections.names import KeyTable, host_keys, printer_keys, user_keys
from projections.sql import insert_rows, storable_text

# The times a report shows: a stored time outside them (year 1 or 9999 from a client's broken
# clock) is shown clamped to the nearest, flagged, instead of failing the page it is on.
FIRST_SHOWN_US = 0  # 1970-01-01T00:00:00Z
LAST_SHOWN_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
LAST_SHOWN_DAY = LAST_SHOWN_US // MICROS_PER_DAY

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
    sa.Column("pages", sa.BigInteger, nullable=False),
    sa.Column("sheets", sa.BigInteger, nullable=False),
    sa.Column("colour_pages", sa.BigInteger, nullable=False),
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

COLUMNS = ("seq", "submitted_at", "size", "cost", "user_id", "printer_id", "host_id", "pages", "sheets",
           "colour_pages", "copies", "status", "duplex", "paper", "pdl", "document")


class JobsProjection(Projection):
    name = "jobs"
    topics = (short_topic(PrintJob.Tracked), short_topic(PrintJob.Denied))
    tables = (jobs,)

    def __init__(self) -> None:
        self.users = KeyTable(user_keys, "login")
        self.printers = KeyTable(printer_keys, "name")
        self.hosts = KeyTable(host_keys, "name")
        self.key_tables = (self.users, self.printers, self.hosts)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        user_ids = self.users.ids(conn, {e.user for _, e in events})
        printer_ids = self.printers.ids(conn, {e.printer for _, e in events})
        host_ids = self.hosts.ids(conn, {e.client_host for _, e in events})
        insert_rows(conn, jobs, COLUMNS, [
            (seq, e.submitted_at, e.size, e.cost, user_ids[e.user], printer_ids[e.printer], host_ids[e.client_host],
             e.pages, e.sheets, e.colour_pages, e.copies,
             JOB_DENIED if e.event_class is PrintJob.Denied else JOB_TRACKED, e.duplex, storable_text(e.paper, 32),
             storable_text(e.pdl, 16), storable_text(e.document))
            for seq, e in events
        ])


# --- queries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobFilter:
    user: str | None = None
    printer: str | None = None
    since: int | None = None  # µs, inclusive
    until: int | None = None  # µs, exclusive
    before_seq: int | None = None  # keyset cursor: rows with a smaller job number
    limit: int = 100
    denied: bool | None = None  # only denied (True) or only tracked (False) jobs
    oldest_first: bool = False  # then the cursor is `after_seq`
    after_seq: int | None = None  # keyset cursor, oldest first: rows with a larger job number


@dataclass(frozen=True)
class JobRow:
    """One job as the read model holds it (units as stored: µs, 1/10,000 money)."""

    seq: int
    user: str
    printer: str
    client_host: str
    document: str
    submitted_at: int
    pages: int
    copies: int
    sheets: int
    colour_pages: int
    duplex: bool
    paper: str
    size: int
    pdl: str
    cost: int
    denied: bool
    submitted_at_clamped: bool = False  # the stored time was outside FIRST_SHOWN_US..LAST_SHOWN_US


def list_jobs(conn: sa.Connection, f: JobFilter) -> tuple[list[JobRow], int | None]:
    """Newest first. Returns the page and the cursor for the next page (None at the end)."""
    q = (sa.select(jobs, user_keys.c.login, printer_keys.c.name.label("printer_name"),
                   host_keys.c.name.label("client_host"))
         .join(user_keys, user_keys.c.id == jobs.c.user_id)
         .join(printer_keys, printer_keys.c.id == jobs.c.printer_id)
         .join(host_keys, host_keys.c.id == jobs.c.host_id))
    if f.user is not None:
        q = q.where(user_keys.c.login == f.user)
    if f.printer is not None:
        q = q.where(printer_keys.c.name == f.printer)
    if f.since is not None:
        q = q.where(jobs.c.submitted_at >= f.since)
    if f.until is not None:
        q = q.where(jobs.c.submitted_at < f.until)
    if f.before_seq is not None:
        q = q.where(jobs.c.seq < f.before_seq)
    if f.after_seq is not None:
        q = q.where(jobs.c.seq > f.after_seq)
    if f.denied is not None:
        q = q.where(jobs.c.status == (JOB_DENIED if f.denied else JOB_TRACKED))
    order = jobs.c.seq.asc() if f.oldest_first else jobs.c.seq.desc()
    rows = conn.execute(q.order_by(order).limit(f.limit + 1)).mappings().all()
    page = [_job_row(r) for r in rows[: f.limit]]
    cursor = rows[f.limit - 1]["seq"] if len(rows) > f.limit else None
    return page, cursor


def _job_row(r: Any) -> JobRow:
    return JobRow(seq=r["seq"], user=r["login"], printer=r["printer_name"], client_host=r["client_host"],
                  document=r["document"], submitted_at=min(max(r["submitted_at"], FIRST_SHOWN_US), LAST_SHOWN_US),
                  submitted_at_clamped=not FIRST_SHOWN_US <= r["submitted_at"] <= LAST_SHOWN_US, pages=r["pages"],
                  copies=r["copies"], sheets=r["sheets"], colour_pages=r["colour_pages"], duplex=bool(r["duplex"]),
                  paper=r["paper"], size=r["size"], pdl=r["pdl"], cost=r["cost"], denied=r["status"] == JOB_DENIED)


def find_job(conn: sa.Connection, seq: int) -> JobRow | None:
    """One job by its number (the console's job page)."""
    q = (sa.select(jobs, user_keys.c.login, printer_keys.c.name.label("printer_name"),
                   host_keys.c.name.label("client_host"))
         .join(user_keys, user_keys.c.id == jobs.c.user_id)
         .join(printer_keys, printer_keys.c.id == jobs.c.printer_id)
         .join(host_keys, host_keys.c.id == jobs.c.host_id)
         .where(jobs.c.seq == seq))
    row = conn.execute(q).mappings().first()
    return _job_row(row) if row is not None else None


def printer_names(conn: sa.Connection) -> list[str]:
    """Every printer a job has named, by name (the console's filters and Printers page)."""
    return list(conn.execute(sa.select(printer_keys.c.name).order_by(printer_keys.c.name)).scalars())
