"""Reports over a month of many jobs: the usage summary, the savings report, and the memory the
job-list CSV takes while it streams.

    .venv/bin/python -m bench.reports_bench [--jobs 1000000] [--stores sqlite,postgresql] [--repeat 3]

The jobs are generated straight into the read-model tables (jobs, usage_daily and the key
tables), not through events and projections: this measures the reports, not ingest (bench.run
measures that). The savings report's sums (savings_daily) are then made from
the jobs rows by the projection's own code (SavingsTotals.fill, as the migration that adds them
does), timed apart. Each user prints one of five documents: most prints repeat one within the
window, the worst case for listing repeats. --database-url measures a database kept before
(--keep) without generating it again. A month of November 2026, 200 users, 40 printers, 8% colour jobs, 40% duplex,
0.5% denied, in the order of their times (as they arrive). The usage period cuts both edge days (08:00 on the 1st to 17:00 on the 30th), so
the partial days are read from job rows and the rest from the daily totals, as in production.
Figures are medians of --repeat runs; the machine's load average is printed beside them.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.stores import read_model_engine  # noqa: E402
import migrations  # noqa: E402
from domain.costs import CostSchedule  # noqa: E402
from domain.site_settings import FIELDS  # noqa: E402
from domain.units import MICROS_PER_DAY, to_micros  # noqa: E402
from projections.jobs import JOB_PRINTED, JOB_TRACKED, jobs, summarize_new_jobs  # noqa: E402
from projections.names import host_keys, printer_keys, user_keys  # noqa: E402
from projections.report_formats import csv_stream  # noqa: E402
from projections.report_period import parse_parameters  # noqa: E402
from projections.reports import CATALOGUE, ReportSources, iter_jobs, run_report  # noqa: E402
from projections.sql import insert_rows  # noqa: E402
from projections.savings_daily import SavingsTotals  # noqa: E402
from projections.usage_daily import usage_daily  # noqa: E402

PG_BASE = os.environ.get("PAGELEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
MONTH_START = to_micros(datetime(2026, 11, 1, tzinfo=timezone.utc))
USERS, PRINTERS = 200, 40
CHUNK = 200_000


def database(store: str, tmp: Path) -> tuple[str, callable]:
    if store == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    name = f"plbench_rep_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{PG_BASE.replace('postgresql://', 'postgresql+psycopg://')}/postgres",
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return f"{PG_BASE}/{name}", drop


def generate(engine: sa.Engine, n: int) -> float:
    """n jobs over November 2026 into jobs and usage_daily; returns the seconds it took."""
    start = time.perf_counter()
    rng = np.random.default_rng(16)
    with engine.begin() as conn:
        insert_rows(conn, user_keys, ("id", "login"), [(i, f"user{i:03d}") for i in range(1, USERS + 1)])
        insert_rows(conn, printer_keys, ("id", "name"), [(i, f"printer{i:02d}") for i in range(1, PRINTERS + 1)])
        insert_rows(conn, host_keys, ("id", "name"), [(1, "ws-1")])
    totals: dict[tuple[int, int, int], np.ndarray] = {}
    docs = np.array(["report.pdf", "minutes.docx", "slides.pptx", "invoice 2026-11.pdf", "photo.jpg"])
    pdls = np.array(["pdf", "postscript", "pcl5", "unknown"])
    for base in range(0, n, CHUNK):
        m = min(CHUNK, n - base)
        # In time order, as jobs arrive (a job's seq is its place in the log): each chunk's rows
        # fall in its share of the month, sorted.
        span = 30 * MICROS_PER_DAY
        t = MONTH_START + np.sort(rng.integers(span * base // n, span * (base + m) // n, m))
        pages = rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 10, 25], m)
        copies = rng.choice([1, 1, 1, 1, 2, 3], m)
        colour = np.where(rng.random(m) < 0.08, np.minimum(pages, rng.integers(1, 4, m)), 0)
        duplex = rng.random(m) < 0.4
        sheets = np.where(duplex, (pages + 1) // 2, pages) * copies
        cost = ((pages - colour) * 1000 + colour * 5000) * copies
        status = (rng.random(m) < 0.005).astype(int)
        user = rng.integers(1, USERS + 1, m)
        printer = rng.integers(1, PRINTERS + 1, m)
        doc = docs[rng.integers(0, len(docs), m)]
        pdl = pdls[rng.integers(0, len(pdls), m)]
        rows = list(zip((base + np.arange(1, m + 1)).tolist(), t.tolist(), [5000] * m, cost.tolist(), user.tolist(),
                        printer.tolist(), [1] * m, pages.tolist(), sheets.tolist(), colour.tolist(), copies.tolist(),
                        status.tolist(), duplex.tolist(), ["A4"] * m, pdl.tolist(), doc.tolist()))
        with engine.begin() as conn:
            insert_rows(conn, jobs, ("seq", "submitted_at", "size", "cost", "user_id", "printer_id", "host_id", "pages",
                                     "sheets", "colour_pages", "copies", "status", "duplex", "paper", "pdl", "document"),
                        rows)
        tracked = status == 0
        day = t // MICROS_PER_DAY
        keys = np.stack([day[tracked], user[tracked], printer[tracked]], axis=1)
        vals = np.stack([(pages * copies)[tracked], sheets[tracked], (colour * copies)[tracked],
                         np.ones(tracked.sum(), dtype=np.int64), cost[tracked]], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        sums = np.zeros((len(uniq), 5), dtype=np.int64)
        np.add.at(sums, inverse.ravel(), vals)
        for k, v in zip(map(tuple, uniq.tolist()), sums):
            totals[k] = totals.get(k, 0) + v
    with engine.begin() as conn:
        insert_rows(conn, usage_daily, ("day", "user_id", "printer_id", "pages", "sheets", "colour_pages", "jobs", "cost"),
                    [(*k, *map(int, v)) for k, v in sorted(totals.items())])
        summarize_new_jobs(conn)  # a bulk load: the BRIN index of job times learns the new pages
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    with engine.begin() as conn:
        SavingsTotals(jobs, (JOB_TRACKED, JOB_PRINTED)).fill(conn)
    print(f"savings sums made from the jobs rows in {time.perf_counter() - start:.1f} s", flush=True)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    return seconds


def sources() -> ReportSources:
    defaults = {name: spec.default for name, spec in FIELDS.items()}
    schedule = CostSchedule(mono_page=1000, colour_page=5000, duplex_discount_pct=10)
    return ReportSources(settings=lambda: defaults, schedule_of=lambda _name: schedule)


def timed(engine: sa.Engine, name: str, params: dict, repeat: int) -> list[float]:
    p = parse_parameters(params, site_timezone="UTC", now=MONTH_START + 40 * MICROS_PER_DAY,
                         allowed=CATALOGUE[name].parameters)
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        run_report(engine, name, p, sources())
        out.append(time.perf_counter() - start)
    return out


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def stream_csv(engine: sa.Engine) -> tuple[float, float, float, int]:
    """Stream the job list of the month as CSV through the code the web resource uses,
    discarding the bytes; sample VmRSS every 50 ms. Returns (idle MiB, peak MiB, seconds, bytes)."""
    p = parse_parameters({"from": "2026-11-01", "to": "2026-11-30"}, site_timezone="UTC",
                         now=MONTH_START + 40 * MICROS_PER_DAY, allowed=CATALOGUE["jobs"].parameters)
    report = run_report(engine, "jobs", p, sources())
    idle = rss_mib()
    peak = [idle]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib())
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    size = 0
    for piece in csv_stream(report, iter_jobs(engine, p, "keep")):
        size += len(piece)
    done.set()
    return idle, max(peak[0], rss_mib()), time.perf_counter() - start, size


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-csv", action="store_true")
    ap.add_argument("--reports", default="", help="only these (comma-separated names, e.g. usage,savings)")
    ap.add_argument("--database-url", default="", help="measure this PostgreSQL database, generated and kept "
                                                        "before (--keep), instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL database and print its URL "
                                                         "(for bench.csv_memory_bench --database-url)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores, {args.jobs:,} jobs over November 2026")
    for store in args.stores.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="plbench-rep-"))
        url, drop = (args.database_url, lambda: None) if args.database_url else database(store, tmp)
        try:
            engine = read_model_engine(url, writer=True)
            if not args.database_url:
                migrations.upgrade(engine)
                seconds = generate(engine, args.jobs)
                print(f"{store:<11} generated in {seconds:.1f} s (straight into the read-model tables)")
            edges = {"from": "2026-11-01T08:00:00Z", "to": "2026-11-30T17:00:00Z"}
            for name, params in (("usage", {**edges, "group_by": "user"}), ("usage", {**edges, "group_by": "day"}),
                                 ("user-printing-summary", edges), ("savings", edges), ("savings", {**edges, "user": "user007"}),
                                 ("environment", edges),
                                 ("workflow-issues", edges), ("habits", edges)):
                if args.reports and name not in args.reports.split(","):
                    continue
                runs = timed(engine, name, params, args.repeat)
                label = (f"{name}[{params.get('group_by', '')}]" if "group_by" in params
                         else f"{name}[user]" if "user" in params else name)
                print(f"{store:<11} {label:<28} median {statistics.median(runs):.3f} s  runs "
                      f"{', '.join(f'{r:.3f}' for r in runs)}  load {os.getloadavg()[0]:.1f}", flush=True)
            if not args.no_csv:
                idle, peak, secs, size = stream_csv(engine)
                print(f"{store:<11} jobs CSV streamed: {size / 1e6:.0f} MB in {secs:.1f} s; RSS {idle:.0f} MiB before, "
                      f"peak {peak:.0f} MiB (+{peak - idle:.0f}); ru_maxrss "
                      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
            engine.dispose()
        finally:
            if args.keep and store == "postgresql":
                print(f"{store:<11} kept: {url}", flush=True)
            else:
                drop()
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
