"""Sums per six-hour span of what each potential saving would change
(projections.reports.savings_report), kept by the jobs projection as it records each charged job,
so that a savings report of every user reads whole spans here and only its partial edges from
the `jobs` rows, as usage does.
A report of some users (a user, a department) reads their job rows (ix_jobs_user_seq): a few
thousand a month each, cheaper to read than to keep sums for.

One row per six-hour span of the UTC day (of the job's sending, as the savings report places
jobs): `sums`, JSON of [printer, paper, duplex, *figures] for each printer, paper and duplex
printed in that span, in key order, zlib-compressed when that is shorter. The figures are the integer quantities each measure touches
(`saving_figures`: impressions that would move from simplex to duplex, from colour to mono, to
2-up, and the sheets saved), never money, then the repeated prints (`REPEATS`). The report
prices the sums with each printer's schedule in force now, by printer, paper and duplex,
exactly as it prices the jobs rows: both paths give the same figures to the unit. A row per
span, not per printer nor per figure and key: a row's own overhead (on PostgreSQL a tuple
header, its line pointer and a primary-key entry, ~48 B) was a third of a printer's sums, and
zlib finds more to share across a span's printers; a row of sixteen columns per paper and
duplex cost ten bytes a job at 4,500 jobs a day.

Repeated prints (the same user's same document again within `REPEAT_MINUTES` of the previous
print) are found from the `jobs` rows themselves; nothing is kept per user or document. A batch
of jobs within one span of each other (live ingest) is added at once: the charged prints within
the window either side of the batch (one range query, ix_jobs_submitted_at), grouped by user and
document. A job recorded out of time order (an offline agent, another host's clock, a held job
printed later) is placed among its neighbours the same way, and the next print after it counted
as a repeat if it now is one. A batch spread wider (the PA6 migration replays legacy rows in
legacy-id order, times over years) is not added: its spans are marked in `savings_dirty`, in the
same transaction, and recounted from the rows when the log is caught up (`SavingsTotals.settle`,
through `Projection.settle`), many spans a pass; a report reads a marked span's rows. So a batch
costs the same few statements however its times are spread. The sums hold for the window of the
site setting's default only: a report with another window reads the jobs rows (its notes say
so). A change of the document-name privacy setting rewrites the names, so every span is marked
to be recounted at that point of the log (`recount_repeats`).
"""
from __future__ import annotations

import bisect
import json
import zlib
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import sqlalchemy as sa

from domain.site_settings import FIELDS
from projections.follower import metadata
from projections.sql import insert_rows, replace_rows

# The window the repeat sums are built with: the setting's default (report_repeat_minutes).
REPEAT_MINUTES = int(FIELDS["report_repeat_minutes"].default)
REPEAT_US = REPEAT_MINUTES * 60 * 1_000_000

# What each measure touches, per job kind (see `saving_figures`), then the repeated prints.
FIGURES = ("d_n", "d_sheets", "d_mono", "d_colour", "m_n", "m_mono", "m_colour", "u_n", "u_sheets", "u_mono_now",
           "u_colour_now", "u_mono", "u_colour")
REPEATS = ("r_n", "r_sheets", "r_cost")
VALUES = (*FIGURES, *REPEATS)
# Up to this many users in a batch, the rows around it are read for those users only; a larger
# batch reads every row of its windows (mostly its own) rather than send a long list.
FEW_USERS = 64

# The sums' unit of time: a quarter of a UTC day (00:00, 06:00, 12:00, 18:00), so that a report's
# partial edges are at most six hours of job rows each; a working day spans two or three.
SPAN_US = 6 * 3_600_000_000
# A batch whose jobs lie within this of each other is added at once; a wider one is recounted.
COMPACT_US = SPAN_US
# Marked spans closer than this share a recount's pass; more ranges than MAX_RANGES become one.
MERGE_GAP = 4
MAX_RANGES = 8
# A recount goes through its range in passes of about RECOUNT_PASS_ROWS job rows (the spans'
# row counts, read first, set the cuts), reading each pass's grouped rows RECOUNT_ROWS at a
# time, so its memory is bounded by a pass, not by the history: a migration marks years of
# spans, which read as one pass held every kind of job of the history at once (~1 GB at
# 1,000,000 jobs).
RECOUNT_PASS_ROWS = 100_000
RECOUNT_ROWS = 20_000
SAVINGS_LOCK = 0x5A51_0013  # pg_advisory_xact_lock key of the savings sums

savings_daily = sa.Table(
    "savings_daily", metadata,
    sa.Column("span", sa.Integer, primary_key=True, autoincrement=False),  # floor of submitted_at's µs / SPAN_US
    sa.Column("sums", sa.LargeBinary, nullable=False),  # `encode_sums`: every printer's of the span
    sqlite_with_rowid=False,
)

# Spans whose sums are to be recounted from the jobs rows (`SavingsTotals.settle`): marked in the
# transaction that wrote the rows, cleared in the one that recounts them, so that each is
# recounted exactly once after its last change. A report reads a marked span's rows.
savings_dirty = sa.Table(
    "savings_dirty", metadata,
    sa.Column("span", sa.Integer, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)


def encode_sums(sums: dict[tuple[int, str, bool], list[int]]) -> bytes:
    """A span's sums, {(printer_id, paper, duplex): VALUES}, as stored: the same bytes for the
    same sums (key order; Python orders str by code point, as UTF-8 bytes), so that audit
    verify compares a rebuild with the live rows. JSON, zlib-compressed when that is shorter
    (a span holding one or two kinds, whose few dozen bytes zlib's header would lengthen)."""
    rows = [[printer, paper, int(duplex), *values]
            for (printer, paper, duplex), values in sorted(sums.items()) if any(values)]
    text = json.dumps(rows, separators=(",", ":")).encode()
    packed = zlib.compress(text, 9)
    return packed if len(packed) < len(text) else text


def decode_sums(blob: bytes) -> dict[tuple[int, str, bool], list[int]]:
    text = bytes(blob)
    # A zlib stream starts with 0x78 here; JSON with "[".
    rows = json.loads(text if text[:1] == b"[" else zlib.decompress(text))
    return {(row[0], row[1], bool(row[2])): row[3:] for row in rows}


def read_sums(conn: sa.Connection, *where: Any,
              printers: Sequence[int] | None = None) -> Iterator[tuple[int, int, str, bool, list[int]]]:
    """(span, printer_id, paper, duplex, VALUES) of the stored sums matching `where` (on
    `savings_daily`), of `printers` only when given."""
    s = savings_daily.c
    wanted = None if printers is None else set(printers)
    for span, blob in conn.execute(sa.select(s.span, s.sums).where(*where)):
        for (printer, paper, duplex), values in decode_sums(blob).items():
            if wanted is None or printer in wanted:
                yield int(span), printer, paper, duplex, values


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


class SavingsTotals:
    """Adds charged jobs to `savings_daily`; used by the jobs projection inside its transaction,
    so the sums and the rows never disagree. `jobs` is its jobs table.

    A batch of jobs close together in time (live ingest: one SPAN_US or less from first to last)
    is added at once, its repeats found with one query of the rows around it. A batch spread
    wider (a migration replaying legacy rows in their own order, a rebuild's page of late
    jobs) is not: its spans are marked in `savings_dirty` and recounted from the rows later
    (`settle`), many at a time, so that a batch costs the same few statements however its
    times are spread."""

    def __init__(self, jobs: sa.Table, charged: Sequence[int]) -> None:
        self.jobs = jobs
        self.charged = tuple(charged)
        # Whether savings_dirty may hold spans (this process marked some, or has not looked yet,
        # or a transaction that cleared some rolled back): `settle` queries only then.
        self.maybe_dirty = True

    def add(self, conn: sa.Connection, charged: Sequence[dict[str, Any]]) -> None:
        """`charged`: jobs now charged, in log order, each a dict of its jobs row's columns (the
        rows already written): a run inserted together, or one job whose row became charged.
        Every other charged row in the table is already counted, or lies in a span marked to be
        recounted."""
        if not charged:
            return
        _serialize(conn)
        times = [int(j["submitted_at"]) for j in charged]
        if max(times) - min(times) > COMPACT_US:
            mark_dirty(conn, {s for t in times for s in (t // SPAN_US, (t + REPEAT_US) // SPAN_US)})
            self.maybe_dirty = True
            return
        cols = {c: [j[c] for j in charged] for c in ("pages", "colour_pages", "copies", "duplex", "sheets")}
        figures = saving_figures(cols["pages"], cols["colour_pages"], cols["copies"], cols["duplex"],
                                 [1] * len(charged), cols["sheets"])
        index: dict[tuple, int] = {}
        at = np.fromiter((index.setdefault(_key(j), len(index)) for j in charged), dtype=np.intp, count=len(charged))
        sums = np.zeros((len(index), len(FIGURES)), dtype=np.int64)
        np.add.at(sums, at, np.column_stack([figures[name] for name in FIGURES]))
        totals = {key: [*values, 0, 0, 0] for key, values in zip(index, sums.tolist())}
        for j in self._repeats(conn, charged):
            t = totals.setdefault(_key(j), [0] * len(VALUES))
            t[-3] += 1
            t[-2] += int(j["sheets"])
            t[-1] += int(j["cost"])
        add_totals(conn, totals)

    def _repeats(self, conn: sa.Connection, charged: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The jobs that become repeated prints: some of `charged`, and the next print after a
        job recorded out of time order. Each job is placed, in log order, among the charged
        prints of its user and document already counted (read from the rows within the window
        either side of the batch: one range, the batch being compact), as the report's row path
        orders them: by (submitted_at, seq)."""
        named = [j for j in charged if j["document"] != ""]
        if not named:
            return []
        lo = min(int(j["submitted_at"]) for j in named) - REPEAT_US
        hi = max(int(j["submitted_at"]) for j in named) + REPEAT_US
        mine = {j["seq"] for j in charged}  # counted as each is placed
        users = {j["user_id"] for j in named}
        c = self.jobs.c
        times: dict[tuple[int, str], list[tuple[int, int]]] = {}
        q = (sa.select(c.user_id, c.document, c.submitted_at, c.seq)
             .where(c.submitted_at >= lo, c.submitted_at <= hi, c.status.in_(self.charged), c.document != ""))
        if len(users) <= FEW_USERS:  # a small batch (live ingest) at a busy site: its users' rows only
            q = q.where(c.user_id.in_(sorted(users)))
        for user, document, at, seq in conn.execute(q):
            if user in users and seq not in mine:
                times.setdefault((user, document), []).append((at, seq))
        for known in times.values():
            known.sort()
        out: list[dict[str, Any]] = []
        later: list[int] = []  # prints made repeats by a job placed before them
        batch = {j["seq"]: j for j in named}
        for j in named:
            key, me = (j["user_id"], j["document"]), (int(j["submitted_at"]), j["seq"])
            known = times.get(key)
            if known is None:
                times[key] = [me]
                continue
            if me > known[-1]:  # in time order, as most are: the previous print is the latest
                if me[0] - known[-1][0] <= REPEAT_US:
                    out.append(j)
                known.append(me)
                continue
            i = bisect.bisect_left(known, me)
            pred = known[i - 1] if i else None
            succ = known[i] if i < len(known) else None
            if pred is not None and me[0] - pred[0] <= REPEAT_US:
                out.append(j)
            # The next print's previous was `pred`; now it is this job.
            if (succ is not None and succ[0] - me[0] <= REPEAT_US
                    and not (pred is not None and succ[0] - pred[0] <= REPEAT_US)):
                later.append(succ[1])
            known.insert(i, me)
        if later:
            rows = {r["seq"]: dict(r) for r in conn.execute(
                sa.select(*(c[name] for name in ROW_COLUMNS)).where(c.seq.in_(later))).mappings()}
            out += [batch.get(seq) or rows[seq] for seq in later]
        return out

    def recount_repeats(self, conn: sa.Connection) -> None:
        """After the document names were rewritten by the privacy setting: every span is to be
        recounted from the rows (`settle`), and read from the rows until it is."""
        _serialize(conn)
        mark_dirty(conn, {int(span) for span, in conn.execute(sa.select(savings_daily.c.span).distinct())})
        self.maybe_dirty = True

    def settle(self, conn: sa.Connection) -> bool:
        """Recount the spans marked in `savings_dirty` from the jobs rows, in as few passes as
        their spread allows (`_merged`). Whether there were any."""
        self.maybe_dirty = False  # set again if this transaction rolls back (the projection's rolled_back)
        spans = sorted(int(s) for s, in conn.execute(sa.select(savings_dirty.c.span)))
        if not spans:
            return False
        _serialize(conn)
        spans = sorted(int(s) for s, in conn.execute(sa.select(savings_dirty.c.span)))  # after the lock
        for first, end in _merged(spans):
            self.recount(conn, first, end)
        return True

    def fill(self, conn: sa.Connection) -> None:
        """Sums from the jobs rows already recorded (a database upgraded to these tables)."""
        c = self.jobs.c
        lo, hi = conn.execute(sa.select(sa.func.min(c.submitted_at), sa.func.max(c.submitted_at))).one()
        if lo is not None:
            self.recount(conn, int(lo) // SPAN_US, int(hi) // SPAN_US + 1)

    def recount(self, conn: sa.Connection, first: int, end: int) -> None:
        """The sums of the spans [first, end), all of them, from the jobs rows, in passes of
        about RECOUNT_PASS_ROWS rows: two queries over a pass's rows (by kind; and the repeat
        window, looking back REPEAT_US before it), whatever the sums held before. Their marks
        in `savings_dirty` are cleared."""
        c = self.jobs.c
        span = _span_sql(c.submitted_at)
        counts = conn.execute(sa.select(span, sa.func.count())
                              .where(c.submitted_at >= first * SPAN_US, c.submitted_at < end * SPAN_US)
                              .group_by(span).order_by(span)).all()  # one row a span: small
        start, rows = first, 0
        for at, n in counts:
            if rows and rows + n > RECOUNT_PASS_ROWS:
                self._recount(conn, start, int(at))
                start, rows = int(at), 0
            rows += n
        self._recount(conn, start, end)

    def _recount(self, conn: sa.Connection, first: int, end: int) -> None:
        c, s = self.jobs.c, savings_daily.c
        lo, hi = first * SPAN_US, end * SPAN_US
        conn.execute(savings_daily.delete().where(s.span >= first, s.span < end))
        conn.execute(savings_dirty.delete().where(savings_dirty.c.span >= first, savings_dirty.c.span < end))
        span = _span_sql(c.submitted_at)
        kinds_query = (sa.select(span, c.printer_id, c.paper, c.duplex, c.pages, c.colour_pages, c.copies,
                                 sa.func.count(), sa.func.sum(c.sheets))
                       .where(c.status.in_(self.charged), c.submitted_at >= lo, c.submitted_at < hi)
                       .group_by(span, c.printer_id, c.paper, c.duplex, c.pages, c.colour_pages, c.copies))
        totals: dict[tuple, list[int]] = {}
        for kinds in conn.execute(kinds_query, execution_options={"yield_per": RECOUNT_ROWS}).partitions():
            cols = list(zip(*kinds))
            figures = saving_figures(cols[4], cols[5], cols[6], cols[3], cols[7], cols[8])
            for row, values in zip(kinds, np.column_stack([figures[name] for name in FIGURES]).tolist()):
                t = totals.setdefault((int(row[0]), row[1], row[2], bool(row[3])), [0] * len(VALUES))
                for k, v in enumerate(values):
                    t[k] += v
        # Bytewise on PostgreSQL, as the report's row path.
        document = c.document.collate("C") if conn.dialect.name == "postgresql" else c.document
        window = {"partition_by": (c.user_id, document), "order_by": (c.submitted_at, c.seq)}
        inner = (sa.select(c.submitted_at, c.printer_id, c.paper, c.duplex, c.sheets, c.cost,
                           sa.func.lag(c.submitted_at).over(**window).label("before"))
                 .where(c.status.in_(self.charged), c.document != "", c.submitted_at >= lo - REPEAT_US,
                        c.submitted_at < hi).subquery())
        k = inner.c
        span = _span_sql(k.submitted_at)
        for d, pr, pa, du, n, sh, co in conn.execute(
                sa.select(span, k.printer_id, k.paper, k.duplex, sa.func.count(), sa.func.sum(k.sheets),
                          sa.func.sum(k.cost))
                .where(k.submitted_at >= lo, k.before.is_not(None), k.submitted_at - k.before <= REPEAT_US)
                .group_by(span, k.printer_id, k.paper, k.duplex)):
            t = totals.setdefault((int(d), pr, pa, bool(du)), [0] * len(VALUES))
            t[-3:] = [int(n), int(sh), int(co)]
        by_span: dict[int, dict[tuple[int, str, bool], list[int]]] = {}
        for (d, printer, paper, duplex), values in totals.items():
            by_span.setdefault(d, {})[(int(printer), paper, duplex)] = values
        insert_rows(conn, savings_daily, ("span", "sums"),  # the range's rows were deleted above
                    [(span, encode_sums(sums)) for span, sums in sorted(by_span.items())])


def mark_dirty(conn: sa.Connection, spans: Iterable[int]) -> None:
    """Mark spans to be recounted from the rows (`SavingsTotals.settle`); until then a report
    reads their rows (`dirty_spans`). One statement however many (a spread batch marks about
    one a job)."""
    spans = sorted(spans)
    if not spans:
        return
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute("INSERT INTO savings_dirty (span) SELECT unnest(%b::int4[]) ON CONFLICT DO NOTHING", [spans])
        return
    conn.exec_driver_sql("INSERT INTO savings_dirty (span) VALUES (?) ON CONFLICT DO NOTHING", [(s,) for s in spans])


def dirty_spans(conn: sa.Connection, first: int, end: int) -> list[int]:
    """The spans of [first, end) whose sums are not to be read: marked to be recounted."""
    d = savings_dirty.c
    return sorted(int(s) for s, in conn.execute(sa.select(d.span).where(d.span >= first, d.span < end)))


def _merged(spans: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted spans as [first, end) ranges to recount: neighbours less than MERGE_GAP spans apart
    share a range (a pass over a few more rows costs less than a query more), and more than
    MAX_RANGES ranges become one (a migration marks spans all over the years: one range, which
    `recount` goes through in passes of about RECOUNT_PASS_ROWS rows)."""
    ranges: list[list[int]] = []
    for s in spans:
        if ranges and s - ranges[-1][1] < MERGE_GAP:
            ranges[-1][1] = s + 1
        else:
            ranges.append([s, s + 1])
    if len(ranges) > MAX_RANGES:
        return [(ranges[0][0], ranges[-1][1])]
    return [(a, b) for a, b in ranges]


def _serialize(conn: sa.Connection) -> None:
    """On PostgreSQL, one transaction at a time changes the sums (this one waits for another
    process's catch-up or recount to commit), so that a recount never misses rows committed
    beside it nor overwrites sums added beside it. SQLite has one writer anyway."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SAVINGS_LOCK})


def add_totals(conn: sa.Connection, totals: dict[tuple, Sequence[int]]) -> None:
    """Add {(span, printer_id, paper, duplex): VALUES} to the stored sums."""
    by_span: dict[int, dict[tuple[int, str, bool], Sequence[int]]] = {}
    for (span, printer, paper, duplex), values in totals.items():
        by_span.setdefault(int(span), {})[(int(printer), paper, bool(duplex))] = values
    if not by_span:
        return
    spans = sorted(by_span)
    s = savings_daily.c
    stored: dict[int, bytes] = {}
    for i in range(0, len(spans), 400):
        stored.update({int(d): b for d, b in conn.execute(
            sa.select(s.span, s.sums).where(s.span.in_(spans[i:i + 400])))})
    out = []
    for span in spans:
        sums = decode_sums(stored[span]) if span in stored else {}
        for kind, values in by_span[span].items():
            t = sums.setdefault(kind, [0] * len(VALUES))
            for i, v in enumerate(values):
                t[i] += int(v)
        out.append((span, encode_sums(sums)))
    replace_rows(conn, savings_daily, ("span",), ("span", "sums"), out)


ROW_COLUMNS = ("seq", "submitted_at", "user_id", "printer_id", "paper", "duplex", "pages", "colour_pages", "copies",
               "sheets", "cost", "document")


def _key(j: Any) -> tuple:
    return (int(j["submitted_at"]) // SPAN_US, int(j["printer_id"]), j["paper"], bool(j["duplex"]))


def _span_sql(at: Any) -> Any:
    """The span (SPAN_US) of a µs time in SQL, floored as Python floors (times before 1970 too)."""
    return sa.case((at >= 0, at // SPAN_US), else_=-((-at - 1) // SPAN_US) - 1)
