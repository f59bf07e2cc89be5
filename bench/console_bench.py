"""Console benchmarks: server time of the Job Accounting page and the dashboard over many jobs, and
the weight of each page.

Run from the repository root:  .venv/bin/python -m bench.console_bench [--jobs 1000000] [--repeat 7]
                                                                       [--store sqlite|postgresql]

The read models are filled directly (jobs, usage_daily and their key tables, as the projections
would leave them for --jobs realistic jobs over the last 120 days: 500 users, 40 printers, 0.5%
denied, 2% on secure queues in their lifecycle's states), since this measures the read path, not
ingest (bench/run.py measures that). Each page
is rendered through the real Falcon app in-process (falcon.testing: routing, authentication,
the session check, the query, the template), so the figure is server time without the network.
Printed: the first (cold) request and the median of --repeat more, beside the goal; and the
weight of every console page: its HTML plus each stylesheet and script it links (read from the
page itself). The load average (/proc/loadavg) is printed before and after, as the machine is
shared. A few real jobs are recorded through the handlers first (so a job page has its events),
then the read models are filled after them.

--ab-index NAME: after the runs, drop that index, ANALYZE, and run the Job Accounting cases again
(the same data and load, without it), to show what the index buys.
--explain: print PostgreSQL's or SQLite's plan of the filtered Job Accounting query.
"""
from __future__ import annotations

import argparse
import calendar
import json
import os
import random
import re
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
from projections.jobs import jobs as jobs_table, summarize_new_jobs  # noqa: E402
from projections.names import host_keys, printer_keys, user_keys  # noqa: E402
from projections.usage_daily import usage_daily  # noqa: E402

PG_BASE = os.environ.get("PAGELEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
USERS, PRINTERS, HOSTS, DAYS = 500, 40, 8, 120
CHUNK = 20_000


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return str(os.getloadavg())


def real_jobs(rt, now_us: int) -> int:
    """Three jobs recorded as the agent's would be (events, then the projections): a job page with
    a real history to render. Returns the first one's number."""
    from commands.job_reports import parse_batch

    # Before the filled period, so their daily totals never meet the filled ones.
    at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now_us / 1e6 - (DAYS + 80) * 86400))
    batch = [{"job_key": f"bench/{i}", "user": "user000", "printer": "printer-03", "client_host": "printsrv00",
              "document": f"real {i}.pdf", "submitted_at": at, "pages": 3, "copies": 1, "colour_pages": 0,
              "duplex": False, "paper": "A4", "pdl": "pdf"} for i in range(3)]
    rt.track_jobs(parse_batch(json.dumps({"jobs": batch}).encode(), now_us))
    rt.catch_up()
    with rt.reader.connect() as conn:
        return int(conn.execute(sa.select(sa.func.min(jobs_table.c.seq))).scalar_one())


def fill(engine: sa.Engine, n: int, now_us: int) -> dict[str, str]:
    rnd = random.Random(7)
    users = [f"user{i:03d}" for i in range(USERS)]
    printers = [f"printer-{i:02d}" for i in range(PRINTERS)]
    start = now_us - DAYS * MICROS_PER_DAY
    step = (now_us - start) // n
    usage: dict[tuple[int, int, int], list[int]] = {}
    with engine.begin() as conn:
        # The real jobs' names are already there: ids follow theirs.
        def ids(table: sa.Table, column: str, names: list[str]) -> list[int]:
            known = dict(conn.execute(sa.select(table.c[column], table.c.id)).all())
            top = max(known.values(), default=0)
            out = []
            for name in names:
                if name not in known:
                    top += 1
                    known[name] = top
                    conn.execute(table.insert(), [{"id": top, column: name}])
                out.append(known[name])
            return out
        user_ids = ids(user_keys, "login", users)
        printer_ids = ids(printer_keys, "name", printers)
        host_ids = ids(host_keys, "name", [f"printsrv{i:02d}" for i in range(HOSTS)])
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
            # 2% on secure queues, in their lifecycle's states (mostly printed): the state filter's case.
            secure = 0 if denied or rnd.random() >= 0.02 else rnd.choice((2, 3, 4, 4, 4, 4, 5, 6, 7))
            cost = 0 if denied else pages * copies * 1000
            rows.append({"seq": seq, "submitted_at": at, "size": pages * 40_000, "cost": cost,
                         "user_id": user_ids[user], "printer_id": printer_ids[printer],
                         "host_id": host_ids[rnd.randrange(HOSTS)], "pages": pages,
                         "sheets": pages * copies, "colour_pages": 0, "copies": copies, "status": 1 if denied else secure,
                         "duplex": False, "paper": "A4", "pdl": "pdf", "document": f"document {i}.pdf"})
            if not denied:
                t = usage.setdefault((day_of(at), user_ids[user], printer_ids[printer]), [0, 0, 0, 0, 0])
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
        summarize_new_jobs(conn)  # a bulk load: the BRIN index of job times learns the new pages
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE jobs")
            conn.exec_driver_sql("ANALYZE usage_daily")
    print()
    return {"busy_user": users[0], "quiet_user": users[USERS - 1], "printer": printers[3]}


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


_LINKED = re.compile(r'<(?:link rel="stylesheet" href|script src)="(/static/[^"]+)"')


def weight(client: falcon.testing.TestClient, path: str, headers: dict, method: str = "GET",
           body: str = "") -> tuple[int, int, list[str]]:
    """(bytes of the page's HTML, bytes with every stylesheet and script it links, those links)."""
    if method == "POST":
        r = client.simulate_post(path, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                                 body=body)
    else:
        r = client.simulate_get(path, headers=headers)
    assert r.status_code in (200, 400), (path, r.status, r.text[:300])
    linked = _LINKED.findall(r.text)
    extra = sum(len(client.simulate_get(src).content) for src in linked)
    return len(r.content), len(r.content) + extra, linked


def job_cases(names: dict[str, str], week_from: str, week_to: str) -> list[tuple[str, str, str, int]]:
    return [
        ("Job Accounting, first page", "/jobs", "", 150),
        ("  filtered by a busy user", "/jobs", f"user={names['busy_user']}", 150),
        ("  filtered by printer", "/jobs", f"printer={names['printer']}", 150),
        ("  a week, a month ago", "/jobs", f"from={week_from}&to={week_to}", 150),
        ("  user + printer + week", "/jobs", f"user={names['busy_user']}&printer={names['printer']}"
                                             f"&from={week_from}&to={week_to}", 150),
        ("  quiet user + printer + week", "/jobs", f"user={names['quiet_user']}&printer={names['printer']}"
                                                   f"&from={week_from}&to={week_to}", 150),
        ("  oldest first", "/jobs", "sort=oldest", 150),
        ("  denied only (0.5%)", "/jobs", "state=denied", 150),
        ("  held only (0.2%)", "/jobs", "state=held", 150),
        ("  printed only (0.9%)", "/jobs", "state=printed", 150),
    ]


def run_cases(client, cases, headers, repeat) -> None:
    for label, path, query, goal in cases:
        cold, median, _ = timed(client, path, query, headers, repeat)
        verdict = "ok" if median <= goal else "OVER"
        print(f"{label:<32} cold {cold:7.1f} ms   median {median:7.1f} ms   goal <= {goal} ms  {verdict}", flush=True)


def explain(rt, names: dict[str, str], since: int, until: int) -> None:
    from projections.jobs import JobFilter, list_jobs

    f = JobFilter(user=names["busy_user"], printer=names["printer"], since=since, until=until, limit=51)
    captured: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - SQLAlchemy's hook
        if statement.lstrip().upper().startswith("SELECT") and "jobs" in statement:
            captured.append((statement, parameters))
    sa.event.listen(rt.reader, "before_cursor_execute", grab)
    with rt.reader.connect() as conn:
        list_jobs(conn, f)
        statement, parameters = captured[-1]
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if rt.reader.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
        for row in conn.exec_driver_sql(prefix + statement, parameters):
            print("   ", " | ".join(str(c) for c in row))
    sa.event.remove(rt.reader, "before_cursor_execute", grab)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--ab-index", default="", help="drop this index afterwards and run the Job Accounting cases again")
    ap.add_argument("--explain", action="store_true")
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
              f"load average {loadavg()} on {os.cpu_count()} cores")
        rt.licensing.install_trial()
        first_real = real_jobs(rt, now)
        t0 = time.perf_counter()
        names = fill(rt.writer, args.jobs, now)
        print(f"  read models filled in {time.perf_counter() - t0:.0f} s")
        cookie, session = rt.sessions.issue("bench-admin", "admin")
        headers = {"Cookie": f"pl_session={cookie}"}
        client = falcon.testing.TestClient(create_app(rt))
        week_to = time.strftime("%Y-%m-%d", time.gmtime(now / 1e6 - 30 * 86400))
        week_from = time.strftime("%Y-%m-%d", time.gmtime(now / 1e6 - 37 * 86400))
        cases = job_cases(names, week_from, week_to) + [
            ("A job's page (3 events)", f"/jobs/{first_real}", "", 150),
            ("Dashboard", "/", "", 300),
        ]
        run_cases(client, cases, headers, args.repeat)
        if args.explain:
            since = calendar.timegm(time.strptime(week_from, "%Y-%m-%d")) * 1_000_000
            until = (calendar.timegm(time.strptime(week_to, "%Y-%m-%d")) + 86400) * 1_000_000
            print("  plan of user + printer + week:")
            explain(rt, names, since, until)

        csrf = session.csrf
        pages = ["/", "/jobs", f"/jobs/{first_real}", "/my/jobs", "/secure-print", "/users", "/printers",
                 "/admin/settings", "/admin/licensing", "/reports", "/reports/usage", "/reports/environment",
                 "/reports/jobs", "/report-schedules", "/audit"]
        weights = [(p, *weight(client, p, headers)) for p in pages]
        weights.append(("/Authentication/Login", *weight(client, "/Authentication/Login", {})))
        run = client.simulate_post("/reports/usage/runs", headers={**headers, "Content-Type":
                                   "application/x-www-form-urlencoded"}, body=f"csrf_token={csrf}&format=csv")
        assert run.status_code == 303, run.text[:300]
        weights.append(("/report-runs/{id}", *weight(client, run.headers["Location"], headers)))
        started = client.simulate_post("/audit/verify", headers={**headers, "Content-Type":
                                       "application/x-www-form-urlencoded"}, body=f"csrf_token={csrf}")
        assert started.status_code == 303, started.text[:300]
        weights.append(("/audit/verify/{id}, running", *weight(client, started.headers["Location"], headers)))
        deadline = time.monotonic() + 600
        run_id = started.headers["Location"].rsplit("/", 1)[1]
        while rt.background_verifications.load(run_id)["state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(1)
        weights.append(("/audit/verify/{id}, done", *weight(client, started.headers["Location"], headers)))
        print("page weight (HTML + every stylesheet and script it links), goal <= 150 KB:")
        for path, html, total, linked in weights:
            print(f"  {path:<30} {html:8,} B HTML  {total / 1024:6.1f} KB in all  "
                  f"{'ok' if total <= 150 * 1024 else 'OVER'}   ({', '.join(linked)})")

        if rt.writer.dialect.name == "postgresql":
            with rt.reader.connect() as conn:
                sizes = conn.exec_driver_sql(
                    "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname IN ('jobs', 'ix_jobs_user', "
                    "'ix_jobs_secure_seq', 'ix_jobs_submitted_at') ORDER BY relname").all()
                count = conn.execute(sa.select(sa.func.count()).select_from(jobs_table)).scalar_one()
            print("sizes on PostgreSQL (bytes a job): " + ", ".join(f"{n} {b / count:.1f}" for n, b in sizes))
        if args.ab_index:
            with rt.writer.begin() as conn:
                conn.exec_driver_sql(f"DROP INDEX {args.ab_index}")
                conn.exec_driver_sql("ANALYZE" if rt.writer.dialect.name == "sqlite" else "ANALYZE jobs")
            print(f"without {args.ab_index} (same data), load average {loadavg()}:")
            run_cases(client, job_cases(names, week_from, week_to), headers, args.repeat)
            if args.explain:
                print("  plan of user + printer + week:")
                explain(rt, names, since, until)
        print(f"load average at the end {loadavg()}")
    finally:
        rt.close()
        if admin is not None:
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
