"""The "Job Accounting" read model: one narrow row per tracked or denied job, and its queries.

Rows are narrow on purpose: int ids for users, printers and hosts (projections.names), money
as int 1/10,000 units, times as int µs since the epoch (domain.units). Jobs are keyed by the
notification id of their event, which is also the "job number" the API shows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence
from uuid import UUID

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.jobs import PrintJob
from domain.privacy import KEEP, OMIT, shown_document
from domain.site_settings import SiteSettings
from domain.units import MICROS_PER_DAY
from projections.follower import Projection, metadata
from projections.names import KeyTable, application_keys, host_keys, printer_keys, user_keys
from projections.savings_daily import ROW_COLUMNS, SavingsTotals, savings_daily, savings_dirty
from projections.sql import insert_rows, storable_text

# The times a report shows: a stored time outside them (year 1 or 9999 from a client's broken
# clock) is shown clamped to the nearest, flagged, instead of failing the page it is on.
FIRST_SHOWN_US = 0  # 1970-01-01T00:00:00Z
LAST_SHOWN_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
LAST_SHOWN_DAY = LAST_SHOWN_US // MICROS_PER_DAY

# status codes of a job row
# A job replayed from a legacy database (tools/pa6_migrate) was counted by the legacy system, not
# by our agent: the read model shows it as this document type, never as "unknown" (which the
# workflow report lists as pages the agent could not count).
LEGACY_PDL = "legacy"

JOB_TRACKED = 0
JOB_DENIED = 1
# a job on a secure queue (docs/secure-release.md): not charged until printed
JOB_HELD = 2
JOB_RELEASED = 3
JOB_PRINTED = 4
JOB_FAILED = 5
JOB_EXPIRED = 6
JOB_DELETED = 7
STATUS_NAMES = {JOB_TRACKED: "tracked", JOB_DENIED: "denied", JOB_HELD: "held", JOB_RELEASED: "released",
                JOB_PRINTED: "printed", JOB_FAILED: "failed", JOB_EXPIRED: "expired", JOB_DELETED: "deleted"}
STATUS_CODES = {name: code for code, name in STATUS_NAMES.items()}
# Jobs that still wait on the server: their spool file is kept, and expiry looks at them.
WAITING = (JOB_HELD, JOB_FAILED)

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
    # Per-copy figures fit 4 bytes (at most 1,000,000 each, checked at ingest and by the legacy
    # migration); `pages` pairs with `host_id`, so neither wastes alignment padding. `sheets`
    # stays 8 bytes: events stored before the impressions limit hold up to 10^10 (all copies).
    sa.Column("pages", sa.Integer, nullable=False),
    sa.Column("sheets", sa.BigInteger, nullable=False),
    sa.Column("colour_pages", sa.Integer, nullable=False),
    sa.Column("copies", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("duplex", sa.Boolean, nullable=False),
    sa.Column("paper", sa.String(32), nullable=False),
    sa.Column("pdl", sa.String(16), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    # What the agent could not be sure of ("colour: ..." / "pages: ..."), "" when sure (issue 19).
    sa.Column("uncertain", sa.String(300), nullable=False, server_default=""),
    # The printing application (application_keys.id; 0: not known). Last, as the migration that
    # added it put it; 2 bytes on PostgreSQL, and none at all on SQLite for a 0.
    sa.Column("app_id", sa.SmallInteger, nullable=False, server_default="0"),
    # A user's own jobs, newest first, keyset-paged: the most frequent query (the user portal).
    # SQLite ends every index entry with the rowid (`seq`), so this holds (user_id, seq) pairs;
    # PostgreSQL's btree keeps one posting list per user (~7 B a job) and sorts the user's rows.
    sa.Index("ix_jobs_user", "user_id"),
    # By printer: few distinct keys, so PostgreSQL's btree deduplication keeps this ~7 B a job.
    sa.Index("ix_jobs_printer", "printer_id"),
    # Reports read the jobs of a period (projections.reports: the partial days at its edges,
    # and every job where the daily totals cannot answer). On PostgreSQL a BRIN index: jobs are
    # appended about in time order, so each 128 pages' least and greatest time finds a period
    # for almost no bytes (a btree took ~23 B a job); see summarize_new_jobs for bulk loads.
    sa.Index("ix_jobs_submitted_at", "submitted_at", postgresql_using="brin",
             postgresql_with={"autosummarize": "on"}),
    # Jobs of secure queues (held, released, printed, failed, expired, deleted) are few among
    # tracked ones: Job Accounting's state filter finds them here (its query repeats the
    # `status >= 2` so that SQLite, which only matches a partial index's terms, uses it too).
    sa.Index("ix_jobs_secure_seq", "seq", sqlite_where=sa.text("status >= 2"),
             postgresql_where=sa.text("status >= 2")),
    # Denied jobs are rare: a partial index finds a period's few without reading its every job.
    sa.Index("ix_jobs_denied_at", "submitted_at", sqlite_where=sa.text("status = 1"),
             postgresql_where=sa.text("status = 1")),
)

# The release side of jobs on secure queues: one row per such job, found by its aggregate id
# (lifecycle events carry only that). Written by the same projection as `jobs`, in the same
# transaction, so a job's row and its release state never disagree. Expiry and the release
# service's orders are queries on the (status, ...) indexes: nothing per job is kept in memory.
held_jobs = sa.Table(
    "held_jobs", metadata,
    sa.Column("job_id", sa.String(36), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),  # the jobs row
    sa.Column("expires_at", sa.BigInteger, nullable=False),  # µs
    sa.Column("changed_at", sa.BigInteger, nullable=False),  # µs, last lifecycle event
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("printer_id", sa.Integer, nullable=False),  # the queue it was sent to
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("has_data", sa.Boolean, nullable=False),
    sa.Column("spool", sa.String(64), nullable=False),  # SHA-256 of the held data ("" until uploaded)
    sa.Column("code_digest", sa.String(64), nullable=False),
    sa.Column("released_to", sa.String(255), nullable=False),  # printer chosen at release
    sa.Column("released_by", sa.String(255), nullable=False),
    sa.Column("reason", sa.String(300), nullable=False),  # why a release failed, last
    # µs, when it printed (PrintJob.Printed `at`, the instant usage_daily counts it on); NULL until
    # then. Here and not on `jobs`: a nullable column there would give every tracked job's row a
    # null bitmap (8 B a job on PostgreSQL), for the few that are held.
    sa.Column("printed_at", sa.BigInteger, nullable=True),
    sa.Index("ix_held_jobs_user", "user_id", "status"),
    sa.Index("ix_held_jobs_status_expires", "status", "expires_at"),
    sa.Index("ix_held_jobs_spool", "spool"),
    # Reports find the held jobs printed in a period's partial days (projections.reports).
    sa.Index("ix_held_jobs_printed_at", "printed_at", sqlite_where=sa.text("printed_at IS NOT NULL"),
             postgresql_where=sa.text("printed_at IS NOT NULL")),
)


def summarize_new_jobs(conn: sa.Connection) -> None:
    """Summarise the pages of jobs added since the BRIN index of `submitted_at` last looked
    (PostgreSQL; nothing on SQLite). Until then a period's query reads those pages whatever
    their times. Autovacuum does it as jobs arrive; a bulk load (a rebuild, the legacy
    migration, a benchmark's fill) calls this once at its end."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT brin_summarize_new_values('ix_jobs_submitted_at'::regclass)"))


COLUMNS = ("seq", "submitted_at", "size", "cost", "user_id", "printer_id", "host_id", "pages", "sheets",
           "colour_pages", "copies", "status", "duplex", "paper", "pdl", "document", "uncertain", "app_id")
_STATUS = COLUMNS.index("status")
UNKNOWN_APPLICATION = 0  # app_id of a job whose application the agent could not tell
MAX_APPLICATION_ID = 32767


LIFECYCLE = (PrintJob.Held, PrintJob.Released, PrintJob.Printed, PrintJob.ReleaseFailed, PrintJob.Deleted,
             PrintJob.Expired)


_SETTING_CHANGED = short_topic(SiteSettings.FieldChanged)
PRIVACY_FIELD = "document_names"


class JobsProjection(Projection):
    """Also follows the `document_names` privacy setting: when it turns to mask or omit, the
    document names of the jobs recorded before are masked or omitted in their rows, at that
    point of the log (so a rebuild gives the same rows), and every report reading the rows
    inherits it. Jobs recorded after it were masked when recorded (commands.jobs)."""

    name = "jobs"
    topics = (short_topic(PrintJob.Tracked), short_topic(PrintJob.Denied), short_topic(PrintJob.Secured),
              *(short_topic(c) for c in LIFECYCLE), _SETTING_CHANGED)
    # savings_daily: the savings report's sums (projections.savings_daily), kept here because a
    # job's repeat depends on the jobs rows around it; savings_dirty: its spans to recount.
    tables = (jobs, held_jobs, savings_daily, savings_dirty)

    def __init__(self) -> None:
        self.users = KeyTable(user_keys, "login")
        self.printers = KeyTable(printer_keys, "name")
        self.hosts = KeyTable(host_keys, "name")
        self.applications = KeyTable(application_keys, "name")
        self.key_tables = (self.users, self.printers, self.hosts, self.applications)
        self.savings = SavingsTotals(jobs, (JOB_TRACKED, JOB_PRINTED))

    def loaded(self, conn: sa.Connection) -> None:
        summarize_new_jobs(conn)

    def settle(self, conn: sa.Connection) -> bool:
        # The savings sums of spans marked by batches spread over time (SavingsTotals.add).
        return self.savings.settle(conn)

    def unsettled(self) -> bool:
        return self.savings.maybe_dirty

    def not_compared(self, live: sa.Connection, table: sa.Table) -> Callable[[tuple], bool] | None:
        # A rebuild ends recounted; the live sums of spans still marked are not read by reports
        # (they read those spans' rows) and are compared once recounted.
        if table is savings_dirty:
            return lambda row: True
        if table is savings_daily:
            marked = {int(s) for s, in live.execute(sa.select(savings_dirty.c.span))}
            return (lambda row: row[0] in marked) if marked else None
        return None

    def rolled_back(self) -> None:
        super().rolled_back()
        self.savings.maybe_dirty = True

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        # Runs of new jobs go in together (the hot path: one COPY); a lifecycle event, or a change
        # of the document-name privacy setting, is applied in log order after the jobs before it.
        run: list[tuple[int, Any]] = []
        for seq, e in events:
            if e.event_class is SiteSettings.FieldChanged:
                if e.field == PRIVACY_FIELD and e.new != KEEP:
                    self._insert(conn, run)
                    run = []
                    apply_document_policy(conn, str(e.new))
                    self.savings.recount_repeats(conn)
                continue
            if e.event_class in LIFECYCLE:
                self._insert(conn, run)
                run = []
                self._lifecycle(conn, seq, e)
            else:
                run.append((seq, e))
        self._insert(conn, run)

    def _insert(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        if not events:
            return
        user_ids = self.users.ids(conn, {e.user for _, e in events})
        printer_ids = self.printers.ids(conn, {e.printer for _, e in events})
        host_ids = self.hosts.ids(conn, {e.client_host for _, e in events})
        app_ids = self._application_ids(conn, {e.application for _, e in events})
        rows = [
            (seq, e.submitted_at, e.size, e.cost, user_ids[e.user], printer_ids[e.printer], host_ids[e.client_host],
             e.pages, e.sheets, e.colour_pages, e.copies, _status_of(e), e.duplex, storable_text(e.paper, 32),
             storable_text(LEGACY_PDL if getattr(e, "legacy_id", "") else e.pdl, 16), storable_text(e.document),
             storable_text(uncertainty(e), 300), app_ids[e.application])
            for seq, e in events
        ]
        insert_rows(conn, jobs, COLUMNS, rows)
        self.savings.add(conn, [dict(zip(COLUMNS, row)) for row in rows if row[_STATUS] == JOB_TRACKED])
        secured = [(seq, e) for seq, e in events if e.event_class is PrintJob.Secured]
        if secured:
            insert_rows(conn, held_jobs, HELD_COLUMNS, [
                (str(UUID(str(e.originator_id))), seq, e.expires_at, e.timestamp, user_ids[e.user],
                 printer_ids[e.printer], JOB_HELD, False, "", e.code_digest, "", "", "")
                for seq, e in secured])

    def _application_ids(self, conn: sa.Connection, names: set[str]) -> dict[str, int]:
        """app_id of each name: 0 for "" — and for a name past the 32,767 a 2-byte column holds,
        so that a flood of made-up names cannot stop the projection (agents send a few dozen)."""
        ids = {n: (i if i <= MAX_APPLICATION_ID else UNKNOWN_APPLICATION)
               for n, i in self.applications.ids(conn, names - {""}).items()}
        ids[""] = UNKNOWN_APPLICATION
        return ids

    def _lifecycle(self, conn: sa.Connection, seq: int, e: Any) -> None:
        job_id = str(UUID(str(e.originator_id)))
        cls = e.event_class
        row = conn.execute(sa.select(held_jobs.c.seq, held_jobs.c.status).where(held_jobs.c.job_id == job_id)).first()
        if row is None:  # a job tracked before it became secure (held late): no release row yet
            return
        values: dict[str, Any] = {"changed_at": e.timestamp}
        job_values: dict[str, Any] = {}
        if cls is PrintJob.Held:
            values.update(has_data=True, spool=e.spool)
        elif cls is PrintJob.Released:
            values.update(status=JOB_RELEASED, released_to=storable_text(e.where, 255),
                          released_by=storable_text(e.by, 255), reason="")
        elif cls is PrintJob.Printed:
            values.update(status=JOB_PRINTED, reason="", printed_at=e.at)
            job_values.update(cost=e.cost, sheets=e.sheets,
                              printer_id=self.printers.ids(conn, {e.printer})[e.printer])
        elif cls is PrintJob.ReleaseFailed:
            values.update(status=JOB_HELD if e.held else JOB_FAILED, reason=storable_text(e.why, 300))
        elif cls is PrintJob.Deleted:
            values.update(status=JOB_DELETED)
        elif cls is PrintJob.Expired:
            values.update(status=JOB_EXPIRED)
        conn.execute(held_jobs.update().where(held_jobs.c.job_id == job_id).values(**values))
        if "status" in values:
            job_values["status"] = values["status"]
        if job_values:
            conn.execute(jobs.update().where(jobs.c.seq == row.seq).values(**job_values))
        if cls is PrintJob.Printed and row.status != JOB_PRINTED:  # now charged: in the savings sums
            printed = conn.execute(sa.select(*(jobs.c[c] for c in ROW_COLUMNS)).where(jobs.c.seq == row.seq)).mappings()
            self.savings.add(conn, [dict(r) for r in printed])


HELD_COLUMNS = ("job_id", "seq", "expires_at", "changed_at", "user_id", "printer_id", "status", "has_data", "spool",
                "code_digest", "released_to", "released_by", "reason")


def _status_of(e: Any) -> int:
    if e.event_class is PrintJob.Denied:
        return JOB_DENIED
    if e.event_class is PrintJob.Secured:
        return JOB_HELD
    return JOB_TRACKED


def uncertainty(e: Any) -> str:
    """What a job's figures are not sure of, in words for a report ("" when sure of all)."""
    parts = []
    if not getattr(e, "pages_known", True):
        parts.append("pages not sure")
    if not getattr(e, "colour_known", True):
        parts.append("colour not known")
    reason = getattr(e, "uncertain", "")
    return f"{', '.join(parts)}: {reason}" if parts and reason else ", ".join(parts)


def apply_document_policy(conn: sa.Connection, policy: str) -> None:
    """Mask or omit the document names of every job row (see JobsProjection)."""
    if policy == OMIT:
        conn.execute(jobs.update().where(jobs.c.document != "").values(document=""))
        return
    names = [r[0] for r in conn.execute(sa.select(jobs.c.document).where(jobs.c.document != "").distinct())]
    changed = [{"old": n, "new": shown_document(n, policy)} for n in names if shown_document(n, policy) != n]
    if changed:
        conn.execute(jobs.update().where(jobs.c.document == sa.bindparam("old"))
                     .values(document=sa.bindparam("new")), changed)


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
    status: int | None = None  # only jobs in this state (a STATUS_NAMES code)


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
    uncertain: str = ""  # what the agent could not be sure of ("" when sure)
    status: str = "tracked"  # STATUS_NAMES: tracked, denied, held, released, printed, failed, expired, deleted


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
        q = q.where(jobs.c.status == JOB_DENIED) if f.denied else q.where(jobs.c.status != JOB_DENIED)
    if f.status is not None:
        q = q.where(jobs.c.status == f.status)
        if f.status >= JOB_HELD:
            q = q.where(jobs.c.status >= JOB_HELD)  # the partial index ix_jobs_secure_seq
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
                  paper=r["paper"], size=r["size"], pdl=r["pdl"], cost=r["cost"], denied=r["status"] == JOB_DENIED,
                  uncertain=r["uncertain"], status=STATUS_NAMES.get(r["status"], "tracked"))


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
