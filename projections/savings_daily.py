"""Daily sums of what each potential saving would change (projections.reports.savings_report),
kept by the jobs projection as it records each charged job, so that the savings report reads
whole days here and only its partial edge days from the `jobs` rows, as usage does.

Per UTC day (of the job's sending, as the savings report places jobs), user, printer, paper
and duplex, and per hour without the user (`savings_hourly`, what a report of every user reads): the integer quantities each measure touches (`saving_figures`: impressions that
would move from simplex to duplex, from colour to mono, to 2-up, and the sheets saved), never
money. The report prices the sums with each printer's schedule in force now, grouped by
printer, paper and duplex, exactly as it prices the jobs rows: both paths give the same figures
to the unit.

Repeated prints (the same user's same document again within `REPEAT_MINUTES` of the previous
print) are summed here too (`r_n`, `r_sheets`, `r_cost`). The previous print is found when a
job is recorded, through `last_prints` (the latest print of each user and document digest);
a job recorded out of time order (an offline agent, another host's clock, a held job printed
later) is placed among its neighbours by a query on the `jobs` rows around its time, and the
next print after it counted as a repeat if it now is one. The sums hold for the window of the
site setting's default only: a report with another window reads the jobs rows (its notes say so).
A change of the document-name privacy setting rewrites the names, so the repeats are recounted
from the rows at that point of the log (`recount_repeats`).
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
import sqlalchemy as sa

from domain.site_settings import FIELDS
from projections.follower import metadata
from projections.sql import add_to_totals, replace_rows

# The window the repeat sums are built with: the setting's default (report_repeat_minutes).
REPEAT_MINUTES = int(FIELDS["report_repeat_minutes"].default)
REPEAT_US = REPEAT_MINUTES * 60 * 1_000_000

# What each measure touches, per job kind (see `saving_figures`), then the repeated prints.
FIGURES = ("d_n", "d_sheets", "d_mono", "d_colour", "m_n", "m_mono", "m_colour", "u_n", "u_sheets", "u_mono_now",
           "u_colour_now", "u_mono", "u_colour")
REPEATS = ("r_n", "r_sheets", "r_cost")
KEYS = ("day", "user_id", "printer_id", "paper", "duplex")
# Bytewise order on PostgreSQL whatever the database's collation, as on SQLite: audit verify
# compares the live rows with a SQLite rebuild walking both in key order.
Paper = sa.String(32).with_variant(sa.String(32, collation="C"), "postgresql")
COLUMNS = (*KEYS, *FIGURES, *REPEATS)

savings_daily = sa.Table(
    "savings_daily", metadata,
    sa.Column("day", sa.Integer, primary_key=True),  # UTC day of submitted_at (floor of µs / a day's µs)
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("printer_id", sa.Integer, primary_key=True),
    sa.Column("paper", Paper, primary_key=True),
    sa.Column("duplex", sa.Boolean, primary_key=True),
    *(sa.Column(c, sa.BigInteger, nullable=False) for c in (*FIGURES, *REPEATS)),
    sqlite_with_rowid=False,
)

# The same sums without the user, by the hour: what a report of every user reads (a few rows an
# hour for each printer, where savings_daily holds one a day for each user who printed on it), so
# that its partial edges are at most an hour of job rows each, not a day.
HOUR_US = 3_600_000_000
SITE_KEYS = ("hour", "printer_id", "paper", "duplex")
savings_hourly = sa.Table(
    "savings_hourly", metadata,
    sa.Column("hour", sa.Integer, primary_key=True),  # hours since 1970-01-01T00:00Z (floor of µs / an hour's µs)
    sa.Column("printer_id", sa.Integer, primary_key=True),
    sa.Column("paper", Paper, primary_key=True),
    sa.Column("duplex", sa.Boolean, primary_key=True),
    *(sa.Column(c, sa.BigInteger, nullable=False) for c in (*FIGURES, *REPEATS)),
    sqlite_with_rowid=False,
)

# The latest charged print of each user's named document (by a digest of the stored name):
# what a job recorded in time order is compared with to tell a repeat.
last_prints = sa.Table(
    "last_prints", metadata,
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("digest", sa.BigInteger, primary_key=True),
    sa.Column("submitted_at", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)


def saving_figures(pages: Any, colour_pages: Any, copies: Any, duplex: Any, n: Any, sheets: Any) -> dict[str, Any]:
    """What each measure changes for `n` jobs of one kind (arrays of kinds, or of single jobs
    with n = 1), `sheets` their sheets in all: the one formula the report's row path and the
    daily sums share. Exact integers."""
    pages, copies, n, sheets = (np.asarray(a, dtype=np.int64) for a in (pages, copies, n, sheets))
    duplex = np.asarray(duplex, dtype=bool)
    colour = np.minimum(np.asarray(colour_pages, dtype=np.int64), pages)
    up = (pages + 1) // 2
    up_colour = np.minimum((colour + 1) // 2, up)
    per = copies * n
    simplex_multi = (~duplex & (pages > 1)).astype(np.int64)
    has_colour = (colour > 0).astype(np.int64)
    multi = (pages > 1).astype(np.int64)
    return {
        "d_n": simplex_multi * n, "d_sheets": simplex_multi * (sheets - up * per),
        "d_mono": simplex_multi * (pages - colour) * per, "d_colour": simplex_multi * colour * per,
        "m_n": has_colour * n, "m_mono": has_colour * (pages - colour) * per, "m_colour": has_colour * colour * per,
        "u_n": multi * n, "u_sheets": multi * (sheets - np.where(duplex, (up + 1) // 2, up) * per),
        "u_mono_now": multi * (pages - colour) * per, "u_colour_now": multi * colour * per,
        "u_mono": multi * (up - up_colour) * per, "u_colour": multi * up_colour * per,
    }


def document_digest(document: str) -> int:
    """A signed 64-bit digest of a stored document name (the key of `last_prints`)."""
    raw = hashlib.blake2b(document.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "big", signed=True)


def hour_of_us(at: int) -> int:
    return at // HOUR_US


class SavingsTotals:
    """Adds charged jobs to `savings_daily` and keeps `last_prints`; used by the jobs projection
    inside its transaction, so the sums and the rows never disagree. `jobs` is its jobs table."""

    def __init__(self, jobs: sa.Table, charged: Sequence[int]) -> None:
        self.jobs = jobs
        self.charged = tuple(charged)

    def add(self, conn: sa.Connection, charged: Sequence[dict[str, Any]], *, in_run: bool) -> None:
        """`charged`: jobs now charged, in log order, each a dict of its jobs row's columns.
        `in_run`: they were inserted together just now (a row of the same run with a higher seq
        is not yet known to the log order); else every row in the table is already counted."""
        if not charged:
            return
        cols = {c: [j[c] for j in charged] for c in ("pages", "colour_pages", "copies", "duplex", "sheets")}
        figures = saving_figures(cols["pages"], cols["colour_pages"], cols["copies"], cols["duplex"],
                                 [1] * len(charged), cols["sheets"])
        totals: dict[tuple, list[int]] = {}
        for j, values in zip(charged, zip(*(figures[name].tolist() for name in FIGURES))):
            t = totals.setdefault(_key(j), [0] * (len(FIGURES) + len(REPEATS)))
            for k, v in enumerate(values):
                t[k] += v
        for j in self._repeats(conn, charged, in_run):
            t = totals.setdefault(_key(j), [0] * (len(FIGURES) + len(REPEATS)))
            t[-3] += 1
            t[-2] += int(j["sheets"])
            t[-1] += int(j["cost"])
        add_totals(conn, [(*k, *v) for k, v in sorted(totals.items())])

    def _repeats(self, conn: sa.Connection, charged: Sequence[dict[str, Any]], in_run: bool) -> list[dict[str, Any]]:
        """The jobs that become repeated prints: some of `charged`, and the next print after a
        job recorded out of time order."""
        named = [(j, document_digest(j["document"])) for j in charged if j["document"] != ""]
        if not named:
            return []
        known = _last_prints_of(conn, sorted({(j["user_id"], d) for j, d in named}))
        latest: dict[tuple[int, int], tuple[int, int]] = {}
        out: list[dict[str, Any]] = []
        for j, digest in named:
            key, me = (j["user_id"], digest), (j["submitted_at"], j["seq"])
            last = latest.get(key) or known.get(key)
            if last is None or me > last:  # in time order: the previous print is the latest
                if last is not None and me[0] - last[0] <= REPEAT_US:
                    out.append(j)
                latest[key] = me
                continue
            pred, succ = self._neighbours(conn, j, in_run)
            if pred is not None and me[0] - pred["submitted_at"] <= REPEAT_US:
                out.append(j)
            # The next print's previous was `pred`; now it is this job, at most REPEAT_US before it.
            if succ is not None and not (pred is not None and succ["submitted_at"] - pred["submitted_at"] <= REPEAT_US):
                out.append(succ)
        if latest:
            replace_rows(conn, last_prints, ("user_id", "digest"), ("user_id", "digest", "submitted_at", "seq"),
                         [(*k, *v) for k, v in sorted(latest.items())])
        return out

    def _neighbours(self, conn: sa.Connection, j: dict[str, Any], in_run: bool) -> tuple[Any, Any]:
        """The charged prints of the same user and document just before and just after `j` (in
        (submitted_at, seq) order) within REPEAT_US of it, as row mappings (None if none)."""
        c = self.jobs.c
        q = (sa.select(*(c[name] for name in ROW_COLUMNS))
             .where(c.user_id == j["user_id"], c.document == j["document"], c.status.in_(self.charged),
                    c.submitted_at >= j["submitted_at"] - REPEAT_US, c.submitted_at <= j["submitted_at"] + REPEAT_US,
                    c.seq != j["seq"]))
        if in_run:
            q = q.where(c.seq < j["seq"])
        me = (j["submitted_at"], j["seq"])
        pred = succ = None
        for row in conn.execute(q).mappings():
            at = (row["submitted_at"], row["seq"])
            if at < me and (pred is None or at > (pred["submitted_at"], pred["seq"])):
                pred = dict(row)
            elif at > me and (succ is None or at < (succ["submitted_at"], succ["seq"])):
                succ = dict(row)
        return pred, succ

    def recount_repeats(self, conn: sa.Connection) -> None:
        """Count every repeated print again from the jobs rows (after their document names were
        rewritten by the privacy setting): the same window the report's row path takes."""
        conn.execute(savings_daily.update().values(r_n=0, r_sheets=0, r_cost=0))
        conn.execute(savings_hourly.update().values(r_n=0, r_sheets=0, r_cost=0))
        conn.execute(last_prints.delete())
        c = self.jobs.c
        # One sort (bytewise on PostgreSQL, as the report's row path) serves both `before` and
        # whether a print is its document's last (`after` NULL).
        document = c.document.collate("C") if conn.dialect.name == "postgresql" else c.document
        window = {"partition_by": (c.user_id, document), "order_by": (c.submitted_at, c.seq)}
        inner = (sa.select(c.seq, c.submitted_at, c.user_id, c.printer_id, c.paper, c.duplex, c.sheets, c.cost,
                           c.document, sa.func.lag(c.submitted_at).over(**window).label("before"),
                           sa.func.lead(c.seq).over(**window).label("after"))
                 .where(c.status.in_(self.charged), c.document != "").subquery())
        k = inner.c
        hour = _hour_sql(k.submitted_at)
        repeated = conn.execute(
            sa.select(hour, k.user_id, k.printer_id, k.paper, k.duplex, sa.func.count(), sa.func.sum(k.sheets),
                      sa.func.sum(k.cost))
            .where(k.before.is_not(None), k.submitted_at - k.before <= REPEAT_US)
            .group_by(hour, k.user_id, k.printer_id, k.paper, k.duplex)).all()
        add_totals(conn, sorted((int(d), u, pr, pa, bool(du), *([0] * len(FIGURES)), int(n), int(sh), int(co))
                             for d, u, pr, pa, du, n, sh, co in repeated))
        latest = [(u, document_digest(doc), t, s) for u, doc, t, s in conn.execute(
            sa.select(k.user_id, k.document, k.submitted_at, k.seq).where(k.after.is_(None)))]
        replace_rows(conn, last_prints, ("user_id", "digest"), ("user_id", "digest", "submitted_at", "seq"),
                     sorted(latest))

    def fill(self, conn: sa.Connection) -> None:
        """Sums from the jobs rows already recorded (a database upgraded to these tables)."""
        c = self.jobs.c
        hour = _hour_sql(c.submitted_at)
        kinds = conn.execute(sa.select(hour, c.user_id, c.printer_id, c.paper, c.duplex, c.pages, c.colour_pages,
                                       c.copies, sa.func.count(), sa.func.sum(c.sheets))
                             .where(c.status.in_(self.charged))
                             .group_by(hour, c.user_id, c.printer_id, c.paper, c.duplex, c.pages, c.colour_pages,
                                       c.copies)).all()
        if kinds:
            cols = list(zip(*kinds))
            figures = saving_figures(cols[5], cols[6], cols[7], cols[4], cols[8], cols[9])
            totals: dict[tuple, list[int]] = {}
            for i, row in enumerate(kinds):
                t = totals.setdefault((int(row[0]), row[1], row[2], row[3], bool(row[4])), [0] * len(FIGURES))
                for k, name in enumerate(FIGURES):
                    t[k] += int(figures[name][i])
            add_totals(conn, [(*key, *t, 0, 0, 0) for key, t in sorted(totals.items())])
        self.recount_repeats(conn)


def _last_prints_of(conn: sa.Connection, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, int]]:
    """The stored latest prints of (user_id, digest) `keys`."""
    if conn.dialect.name == "postgresql":
        # Two arrays joined, not a list of pairs: a query with a thousand parameters costs more
        # to send than to run.
        driver = conn.connection.driver_connection
        with driver.cursor() as cur:
            cur.execute("SELECT l.user_id, l.digest, l.submitted_at, l.seq FROM last_prints l "
                        "JOIN unnest(%b::int4[], %b::int8[]) AS k(u, d) ON l.user_id = k.u AND l.digest = k.d",
                        [[u for u, _ in keys], [d for _, d in keys]])
            return {(u, d): (t, s) for u, d, t, s in cur.fetchall()}
    lp = last_prints.c
    known: dict[tuple[int, int], tuple[int, int]] = {}
    for i in range(0, len(keys), 400):
        known.update({(u, d): (t, s) for u, d, t, s in conn.execute(
            sa.select(lp.user_id, lp.digest, lp.submitted_at, lp.seq)
            .where(sa.tuple_(lp.user_id, lp.digest).in_(keys[i:i + 400])))})
    return known


def add_totals(conn: sa.Connection, rows: Sequence[tuple]) -> None:
    """Add rows (in COLUMNS order, but the hour in place of the day) to savings_daily by their
    day, and without the user to savings_hourly."""
    daily: dict[tuple, list[int]] = {}
    site: dict[tuple, list[int]] = {}
    for hour, user, printer, paper, duplex, *values in rows:
        for sums, key in ((daily, (hour // 24, user, printer, paper, duplex)), (site, (hour, printer, paper, duplex))):
            t = sums.setdefault(key, [0] * len(values))
            for i, v in enumerate(values):
                t[i] += v
    add_to_totals(conn, savings_daily, KEYS, COLUMNS, [(*k, *v) for k, v in sorted(daily.items())])
    add_to_totals(conn, savings_hourly, SITE_KEYS, (*SITE_KEYS, *FIGURES, *REPEATS),
                  [(*k, *v) for k, v in sorted(site.items())])


ROW_COLUMNS = ("seq", "submitted_at", "user_id", "printer_id", "paper", "duplex", "pages", "colour_pages", "copies",
               "sheets", "cost", "document")


def _key(j: Any) -> tuple:
    return (hour_of_us(int(j["submitted_at"])), int(j["user_id"]), int(j["printer_id"]), j["paper"], bool(j["duplex"]))


def _hour_sql(at: Any) -> Any:
    """The hour of a µs time in SQL, floored as Python floors (times before 1970 too)."""
    return sa.case((at >= 0, at // HOUR_US), else_=-((-at - 1) // HOUR_US) - 1)
