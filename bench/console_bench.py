"""Console benchmarks: server time of the Job Accounting page and the dashboard over many jobs, and
the weight of each page.

Run from the repository root:  .venv/bin/python -m bench.console_bench [--jobs 1000000] [--repeat 7]
                                                                       [--store sqlite|postgresql]

The read models are filled directly (jobs, usage_daily and their key tables, as the projections
would leave them for --jobs realistic jobs over the last 120 days: 500 users, 40 printers, 0.5%
denied), since this measures the read path, not ingest (bench/run.py measures that). Each page
is rendered through the real Falcon app in-process (falcon.testing: routing, authentication,
the session check, the query, the template), so the figure is server time without the network.
Printed: the first (cold) request and the median of --repeat more, beside the goal; and the
bytes of each page's HTML plus the one stylesheet and script it loads.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import falcon.testing  # noqa: E402

from api.app import create_app  # noqa: E402
from domain.units import MICROS_PER_DAY, day_of  # noqa: E402
from pageledger.bootstrap import build_runtime  # noqa: E402
from pageledger.settings import Settings  # noqa: E402
from projections.jobs import jobs as jobs_table  # noqa: E402
from projections.names import host_keys, printer_keys, user_keys  # noqa: E402
from projections.usage_daily import usage_daily  # noqa: E402

PG_BASE = os.environ.get("PAGELEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
USERS, PRINTERS, HOSTS, DAYS = 500, 40, 8, 120
CHUNK = 20_000


def fill(engine: sa.Engine, n: int, now_us: int) -> dict[str, str]:
    rnd = random.Random(7)
    users = [f"user{i:03d}" for i in range(USERS)]
    printers = [f"printer-{i:02d}" for i in range(PRINTERS)]
    start = now_us - DAYS * MICROS_PER_DAY
    step = (now_us - start) // n
    usage: dict[tuple[int, int, int], list[int]] = {}
    with engine.begin() as conn:
        conn.execute(user_keys.insert(), [{"id": i + 1, "login": u} for i, u in enumerate(users)])
        conn.execute(printer_keys.insert(), [{"id": i + 1, "name": p} for i, p in enumerate(printers)])
        conn.execute(host_keys.insert(), [{"id": i + 1, "name": f"printsrv{i:02d}"} for i in range(HOSTS)])
    seq = 1_000
    for first in range(0, n, CHUNK):
        rows = []
        for i in range(first, min(n, first + CHUNK)):
            seq += 1
            at = start + i * step
            # Some users print far more than others (as in tools.sample_jobs).
            user = min(USERS - 1, int(rnd.paretovariate(1.2)) - 1) if rnd.random() < 0.3 else rnd.randrange(USERS)
            printer = rnd.randrange(PRINTERS)
            pages = max(1, int(rnd.lognormvariate(1.0, 1.0)))
            copies = 1 if rnd.random() < 0.85 else rnd.randint(2, 5)
            denied = rnd.random() < 0.005
            cost = 0 if denied else pages * copies * 1000
            rows.append({"seq": seq, "submitted_at": at, "size": pages * 40_000, "cost": cost, "user_id": user + 1,
                         "printer_id": printer + 1, "host_id": rnd.randrange(HOSTS) + 1, "pages": pages,
                         "sheets": pages * copies, "colour_pages": 0, "copies": copies, "status": 1 if denied else 0,
                         "duplex": False, "paper": "A4", "pdl": "pdf", "document": f"document {i}.pdf"})
            if not denied:
                t = usage.setdefault((day_of(at), user + 1, printer + 1), [0, 0, 0, 0, 0])
                t[0] += pages * copies
                t[1] += pages * copies
                t[3] += 1
                t[4] += cost
        with engine.begin() as conn:
            conn.execute(jobs_table.insert(), rows)
        print(f"  filled {min(n, first + CHUNK):,} of {n:,} jobs", end="\r", flush=True)
    with engine.begin() as conn:
        items = [{"day": d, "user_id": u, "printer_id": p, "pages": t[0], "sheets": t[1], "colour_pages": t[2],
                  "jobs": t[3], "cost": t[4]} for (d, u, p), t in usage.items()]
        for first in range(0, len(items), CHUNK):
            conn.execute(usage_daily.insert(), items[first:first + CHUNK])
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE jobs")
            conn.exec_driver_sql("ANALYZE usage_daily")
    print()
    return {"busy_user": users[0], "printer": printers[3]}


def timed(client: falcon.testing.TestClient, path: str, query: str, headers: dict, repeat: int) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        r = client.simulate_get(path, query_string=query, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (path, query, r.status, r.text[:300])
        size = len(r.content)
    return times[0], statistics.median(times[1:]), size


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="plconsole-"))
    url = ""
    admin = None
    if args.store == "postgresql":
        name = f"plconsole_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_BASE + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = f"{PG_BASE}/{name}"
    settings = Settings.load(environ={}, data_dir=str(tmp / "var"), database_url=url or None)
    rt = build_runtime(settings)
    try:
        now = rt.clock()
        print(f"console bench: {args.jobs:,} jobs on {args.store}, median of {args.repeat} after one cold request; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        t0 = time.perf_counter()
        names = fill(rt.writer, args.jobs, now)
        print(f"  read models filled in {time.perf_counter() - t0:.0f} s")
        cookie, _ = rt.sessions.issue("bench-admin", "admin")
        headers = {"Cookie": f"pl_session={cookie}"}
        client = falcon.testing.TestClient(create_app(rt))
        week_to = time.strftime("%Y-%m-%d", time.gmtime(now / 1e6 - 30 * 86400))
        week_from = time.strftime("%Y-%m-%d", time.gmtime(now / 1e6 - 37 * 86400))
        cases = [
            ("Job Accounting, first page", "/jobs", "", 150),
            ("  filtered by a busy user", "/jobs", f"user={names['busy_user']}", 150),
            ("  filtered by printer", "/jobs", f"printer={names['printer']}", 150),
            ("  a week, a month ago", "/jobs", f"from={week_from}&to={week_to}", 150),
            ("  user + printer + week", "/jobs", f"user={names['busy_user']}&printer={names['printer']}"
                                                 f"&from={week_from}&to={week_to}", 150),
            ("  oldest first", "/jobs", "sort=oldest", 150),
            ("  denied only (0.5%)", "/jobs", "state=denied", 150),
            ("Dashboard", "/", "", 300),
        ]
        weights = {}
        for label, path, query, goal in cases:
            cold, median, size = timed(client, path, query, headers, args.repeat)
            verdict = "ok" if median <= goal else "OVER"
            print(f"{label:<30} cold {cold:7.1f} ms   median {median:7.1f} ms   goal <= {goal} ms  {verdict}")
            weights.setdefault(path, size)
        static = sum(len(client.simulate_get(f"/static/{f}").content) for f in ("console.css", "console.js"))
        for path in ("/users", "/printers", "/admin/settings", "/admin/licensing", "/my/jobs"):
            weights[path] = len(client.simulate_get(path, headers=headers).content)
        weights["/Authentication/Login"] = len(client.simulate_get("/Authentication/Login").content)
        print(f"page weight (HTML + console.css + console.js = {static:,} B), goal <= 150 KB:")
        for path, size in weights.items():
            total = size + static
            print(f"  {path:<24} {size:7,} B HTML  {total / 1024:6.1f} KB in all  {'ok' if total <= 150 * 1024 else 'OVER'}")
    finally:
        rt.close()
        if admin is not None:
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
