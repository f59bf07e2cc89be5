"""PageLedger's benchmark: one command, one line per figure, each beside its raw ceiling.

    .venv/bin/python -m bench.run [--jobs 100000] [--stores sqlite,postgresql] [--repeat 3]

Figures (medians of --repeat runs where it says so):
  ingest_http      tracked jobs/s through POST /Services/jobs, batches of 500, projections caught up
  ingest_commands  the same through commands.jobs.TrackJobs directly (with and without validation)
  ceiling_insert   plain executemany of the same rows into a plain table, 500 a transaction
  post_latency     single-job POST p50/p99 at a fixed 200 requests/s
  disk             bytes per job after --jobs realistic jobs (VACUUMed): events and each read model
  rebuild          projection rebuild rate, beside reading+decoding the log alone
This is not a test: it asserts nothing and prints what it measured. A figure that fails is
printed as FAILED with the reason, the next figure is measured all the same, and the exit
status is 1 when any failed.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commands.job_reports import parse_batch  # noqa: E402
from commands.jobs import TrackJobs  # noqa: E402
from pageledger.bootstrap import build_runtime  # noqa: E402
from pageledger.settings import Settings  # noqa: E402
from tools.sample_jobs import sample_jobs  # noqa: E402

PG_BASE = os.environ.get("PAGELEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB_PREFIX = os.environ.get("PAGELEDGER_BENCH_DB_PREFIX", "pl_bench")  # the bench's databases (dropped after)
BATCH = 500
READY_SECONDS = 120.0  # a first start on a busy machine migrates, issues tokens, installs the trial


def loadavg() -> str:
    """The 1-minute load average, printed beside every figure: the machine is shared."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def line(name: str, store: str, value: str, ceiling: str = "") -> None:
    print(f"{name:<18} {store:<11} {value:<40} {ceiling}  [load {loadavg()}]", flush=True)


class Database:
    """A fresh database of one kind, dropped afterwards."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.tmp = Path(tempfile.mkdtemp(prefix="plbench-"))
        if store == "sqlite":
            self.url = f"sqlite:///{self.tmp / 'pageledger.db'}"
        else:
            self.name = f"{DB_PREFIX}_{uuid.uuid4().hex[:8]}"
            self._admin(f'CREATE DATABASE "{self.name}"')
            self.url = f"{PG_BASE}/{self.name}"

    def _admin(self, sql: str) -> None:
        eng = sa.create_engine(f"{PG_BASE.replace('postgresql://', 'postgresql+psycopg://')}/postgres",
                               isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(sa.text(sql))
        eng.dispose()

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"))

    def drop(self) -> None:
        if self.store == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)


def bodies(n: int, seed: int, prefix: str) -> list[bytes]:
    jobs = list(sample_jobs(n, seed=seed, key_prefix=prefix))
    return [json.dumps({"jobs": jobs[i:i + BATCH]}).encode() for i in range(0, n, BATCH)]


class Server:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.port = _free_port()
        self.workdir = db.tmp / "server"
        self.workdir.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
        env.update(PYTHONPATH=str(ROOT), PAGELEDGER_DATABASE_URL=db.url, PAGELEDGER_LOG_LEVEL="WARNING",
                   PAGELEDGER_PROJECTION_POLL_SECONDS="0.02")
        self.proc = subprocess.Popen([sys.executable, "-m", "pageledger.cli", "up", "--port", str(self.port)],
                                     cwd=self.workdir, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / "server.log", "wb"))
        try:
            self.wait_ready()
            self._first_setup()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        """Until /healthz answers 200: listening, and its projection runner running."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode}: {self.log_tail()}")
            try:
                status, body = self.get("/healthz")
                if status == 200:
                    return
                last = f"HTTP {status} {body}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout:.0f}s (last /healthz: {last}): {self.log_tail()}")

    def log_tail(self, chars: int = 1500) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")[-chars:]

    def _first_setup(self) -> None:
        tokens = json.loads((self.workdir / "var" / "first-tokens.json").read_text())
        self.agent = tokens["agent_token"]
        # 500 sample users on the 5-user trial of a first start: track them all, as a licensed
        # site would (the seat check still runs for every batch).
        c = self.conn()
        c.request("PUT", "/api/v1/licence/settings", body=b'{"track_unlicensed": true}',
                  headers={"Authorization": f"Bearer {tokens['admin_token']}", "Content-Type": "application/json"})
        status = c.getresponse().status
        c.close()
        if status != 200:
            raise RuntimeError(f"PUT /api/v1/licence/settings answered {status}")

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def get(self, path: str) -> tuple[int, dict]:
        c = self.conn()
        c.request("GET", path)
        r = c.getresponse()
        data = json.loads(r.read() or b"{}")
        c.close()
        return r.status, data

    def post(self, conn: http.client.HTTPConnection, body: bytes) -> int:
        conn.request("POST", "/Services/jobs", body=body,
                     headers={"Authorization": f"Bearer {self.agent}", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status

    def wait_projections(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        target = _last_tracked(self.db)
        while time.monotonic() < deadline:
            _, h = self.get("/healthz")  # 503 while behind: its body still has the positions
            positions = h.get("projections", {})
            if min(positions.get("jobs", 0), positions.get("usage_daily", 0)) >= target:
                return
            time.sleep(0.02)
        raise TimeoutError(f"projections not caught up with {target} after {timeout:.0f}s: {h}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_tracked(db: Database) -> int:
    eng = db.engine()
    with eng.connect() as c:
        if db.store == "sqlite":
            sql = "SELECT coalesce(max(rowid),0) FROM stored_events WHERE topic='PrintJob.Tracked'"
        else:
            sql = "SELECT coalesce(max(notification_id),0) FROM pageledger_events WHERE topic='PrintJob.Tracked'"
        v = int(c.execute(sa.text(sql)).scalar())
    eng.dispose()
    return v


def ingest_http(db: Database, n: int, clients: int = 2) -> float:
    server = Server(db)
    try:
        chunks = bodies(n, seed=1, prefix="http")
        queue = list(reversed(chunks))
        lock = threading.Lock()
        failures = []

        def worker() -> None:
            conn = server.conn()
            try:
                while True:
                    with lock:
                        if not queue:
                            break
                        body = queue.pop()
                    status = server.post(conn, body)
                    if status != 200:
                        failures.append(status)
            except Exception as exc:  # noqa: BLE001 - the figure fails with it, below
                failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                conn.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise RuntimeError(f"{len(failures)} batches failed: {failures[:3]}")
        server.wait_projections()
        return n / (time.perf_counter() - started)
    finally:
        server.stop()


def post_latency(db: Database, rate: float = 200.0, seconds: float = 10.0) -> tuple[float, float, float]:
    server = Server(db)
    try:
        # Steady state: every sample user has printed before (holds a seat, or was refused one
        # once), as on any site after its first day. A first-time user costs one licence save.
        warm = list(sample_jobs(5000, seed=5, key_prefix="warm"))  # the same users as below
        conn = server.conn()
        for i in range(0, len(warm), BATCH):
            status = server.post(conn, json.dumps({"jobs": warm[i:i + BATCH]}).encode())
            if status != 200:
                raise RuntimeError(f"warm-up batch answered {status}")
        conn.close()
        server.wait_projections()
        jobs = list(sample_jobs(int(rate * seconds), seed=5, key_prefix="lat"))
        payloads = [json.dumps({"jobs": [j]}).encode() for j in jobs]
        latencies: list[float] = []
        lock = threading.Lock()
        start = time.perf_counter() + 0.2
        per_client = 4  # open-loop: each client owns every 4th slot of the schedule

        failures: list[str] = []

        def client(k: int) -> None:
            conn = server.conn()
            try:
                for i in range(k, len(payloads), per_client):
                    due = start + i / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    status = server.post(conn, payloads[i])
                    if status != 200:
                        failures.append(f"HTTP {status}")
                    # latency from the scheduled send time: a late send counts against us
                    with lock:
                        latencies.append(time.perf_counter() - due)
            except Exception as exc:  # noqa: BLE001 - the figure fails with it, below
                failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(per_client)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(payloads)} requests failed: {failures[:3]}")
        q = statistics.quantiles(latencies, n=100)
        achieved = len(latencies) / (time.perf_counter() - start)
        return q[49] * 1000, q[98] * 1000, achieved
    finally:
        server.stop()


def ingest_commands(db: Database, n: int, validate: bool) -> float:
    rt = build_runtime(Settings.load(environ={}, database_url=db.url, data_dir=db.tmp / "var"))
    try:
        raw = bodies(n, seed=2, prefix=f"cmd{validate}")
        pre = None if validate else [parse_batch(b) for b in raw]
        track_jobs = TrackJobs(rt.app, rt.printers)  # no seat gate: the store's cost alone
        started = time.perf_counter()
        for i, body in enumerate(raw):
            reports = parse_batch(body) if validate else pre[i]
            track_jobs(reports)
        return n / (time.perf_counter() - started)
    finally:
        rt.close()


def ceiling_insert(db: Database, n: int) -> float:
    rows = [(j["job_key"], j["user"], j["printer"], j["client_host"], j["document"], j["submitted_at"], j["pages"],
             j["copies"], j["colour_pages"], j["duplex"], j["paper"], j["size"], j["pdl"], 0, 1)
            for j in sample_jobs(n, seed=3, key_prefix="raw")]
    ddl = ("CREATE TABLE raw_jobs (id {pk}, job_key TEXT, usr TEXT, printer TEXT, host TEXT, doc TEXT, t TEXT, "
           "pages INT, copies INT, colour INT, duplex BOOLEAN, paper TEXT, size BIGINT, pdl TEXT, cost BIGINT, sched INT)")
    cols = "job_key, usr, printer, host, doc, t, pages, copies, colour, duplex, paper, size, pdl, cost, sched"
    if db.store == "sqlite":
        con = sqlite3.connect(db.tmp / "raw.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(ddl.format(pk="INTEGER PRIMARY KEY"))
        started = time.perf_counter()
        for i in range(0, n, BATCH):
            con.execute("BEGIN")
            con.executemany(f"INSERT INTO raw_jobs ({cols}) VALUES ({','.join('?' * 15)})", rows[i:i + BATCH])
            con.execute("COMMIT")
        rate = n / (time.perf_counter() - started)
        con.close()
        return rate
    import psycopg

    with psycopg.connect(db.url) as con:
        con.execute(ddl.format(pk="BIGSERIAL PRIMARY KEY"))
        con.commit()
        started = time.perf_counter()
        with con.cursor() as cur:
            for i in range(0, n, BATCH):
                cur.executemany(f"INSERT INTO raw_jobs ({cols}) VALUES ({','.join(['%s'] * 15)})", rows[i:i + BATCH])
                con.commit()
        return n / (time.perf_counter() - started)


def disk_bytes(db: Database) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Bytes per job of each table (everything: heap, TOAST, indexes), and of each table's parts
    (its heap, each index)."""
    eng = db.engine()
    sizes: dict[str, int] = {}
    parts: dict[tuple[str, str], int] = {}
    try:
        if db.store == "sqlite":
            raw = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw.execute("VACUUM")
            rows = raw.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
            owners = dict(raw.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
            raw.close()
            for name, size in rows:
                table = owners.get(name, name)
                sizes[table] = sizes.get(table, 0) + size
                parts[(table, "heap" if name == table else name)] = size
        else:
            with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(sa.text("VACUUM FULL"))
                for (table,) in c.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname='public'")):
                    sizes[table] = int(c.execute(sa.text(f"SELECT pg_total_relation_size('\"{table}\"')")).scalar())
                # Where each table's bytes go: its heap (with TOAST) and each of its indexes.
                for table, part, size in c.execute(sa.text(
                        "SELECT t.relname, 'heap', pg_table_size(t.oid) FROM pg_class t "
                        "JOIN pg_namespace n ON n.oid = t.relnamespace "
                        "WHERE n.nspname = 'public' AND t.relkind = 'r' "
                        "UNION ALL SELECT t.relname, i.relname, pg_relation_size(i.oid) FROM pg_index x "
                        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                        "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'")):
                    parts[(table, part)] = int(size)
        with eng.connect() as c:
            jobs = int(c.execute(sa.text("SELECT count(*) FROM jobs")).scalar())
    finally:
        eng.dispose()
    return ({t: s / jobs for t, s in sizes.items() if s},
            {k: s / jobs for k, s in parts.items() if s})


def rebuild_rate(db: Database) -> tuple[float, float, float]:
    rt = build_runtime(Settings.load(environ={}, database_url=db.url, data_dir=db.tmp / "var"))
    try:
        # Ceiling: read and decode the whole log as the projections do, 5000 at a time, and
        # write nothing.
        from projections.log_reader import LogReader

        reader = LogReader(rt.app)
        started = time.perf_counter()
        pos, count = 0, 0
        while True:
            page = reader.read(pos, 5000)
            if not page:
                break
            count += len(page)
            pos = page[-1][0]
        read_rate = count / (time.perf_counter() - started)
        rates = []
        for follower in (rt.followers["jobs"], rt.followers["usage_daily"], rt.all_together(batch_size=5000)):
            started = time.perf_counter()
            applied = follower.rebuild()
            rates.append(applied / (time.perf_counter() - started))
        return rates[0], rates[1], rates[2], read_rate
    finally:
        rt.close()


class Figures:
    """Measures each figure on its own: a failure is printed (FAILED and why, the traceback on
    stderr) and remembered, and the next figure is measured all the same."""

    def __init__(self) -> None:
        self.failed: list[tuple[str, str, str]] = []

    def measure(self, name: str, store: str, fn, *args):
        """`fn(*args)`, or None when it raised."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - report it and go on with the next figure
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            self.failed.append((name, store, reason))
            line(name, store, f"FAILED {reason}")
            traceback.print_exc(file=sys.stderr)
            return None

    @staticmethod
    def skipped(name: str, store: str, because: str) -> None:
        line(name, store, f"not measured: {because}")


def _runs(rates: list[float], failed: int) -> str:
    listed = ", ".join(f"{x:,.0f}" for x in rates)
    return f"runs: {listed}" + (f"; {failed} failed" if failed else "")


def report_disk(db: Database, store: str) -> None:
    sizes, parts = disk_bytes(db)
    events = sum(v for k, v in sizes.items() if k in ("stored_events", "pageledger_events"))
    models = {k: v for k, v in sizes.items() if k in ("jobs", "usage_daily", "user_keys", "printer_keys", "host_keys",
                                                      "savings_daily")}
    # The event store's own side tables: the seals (adapters.event_seals), the personal keys and
    # erasures, the people and the Users' keys (adapters.personal_keys).
    side_tables = ("_events_seals", "_events_keys", "_events_erasures", "_events_people", "_events_subjects")
    models.update({k: v for k, v in sizes.items() if k.endswith(side_tables)})
    total = events + sum(models.values())
    line("disk", store, f"{total:.0f} B/job total", "target ≤ 350 (SQLite) / ≤ 450 (PG); PA ~500, PaperCut ~850")
    line("disk.events", store, f"{events:.0f} B/job")
    for k, v in sorted(models.items()):
        line(f"disk.{k}", store, f"{v:.1f} B/job")
    for (table, part), v in sorted(parts.items()):
        if table in models or table in ("stored_events", "pageledger_events"):
            line(f"disk.part", store, f"{table} {part}: {v:.1f} B/job")


def report_rebuild(db: Database, store: str) -> None:
    jr, ur, ar, read = rebuild_rate(db)
    line("rebuild.all", store, f"{ar:,.0f} events/s (3 projections, one pass)",
         f"ceiling: read+decode log {read:,.0f}/s ({ar / read:.0%}); target ≥ 20,000")
    line("rebuild.jobs", store, f"{jr:,.0f} events/s", f"ceiling: read+decode log {read:,.0f}/s ({jr / read:.0%})")
    line("rebuild.usage_daily", store, f"{ur:,.0f} events/s", f"ceiling: read+decode log {read:,.0f}/s ({ur / read:.0%})")


def report_latency(store: str) -> None:
    db = Database(store)
    try:
        p50, p99, achieved = post_latency(db)
        line("post_latency", store, f"p50 {p50:.1f} ms, p99 {p99:.1f} ms at {achieved:.0f} req/s",
             "target p99 ≤ 20 ms at 200 req/s")
    finally:
        db.drop()


def commands_rate(store: str, n: int, validate: bool) -> float:
    db = Database(store)
    try:
        return ingest_commands(db, n, validate)
    finally:
        db.drop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--stores", default="sqlite,postgresql")
    p.add_argument("--repeat", type=int, default=3, help="runs per throughput figure (median reported)")
    p.add_argument("--only", default="", help="comma list of: ingest,commands,latency,disk,rebuild")
    args = p.parse_args()
    only = set(filter(None, args.only.split(",")))
    want = (lambda k: not only or k in only)
    figures = Figures()
    print(f"# PageLedger bench {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, jobs={args.jobs}, median of {args.repeat}", flush=True)
    for store in args.stores.split(","):
        if want("ingest") or want("disk") or want("rebuild"):
            http_rates, raw_rates, http_failed = [], [], 0
            for r in range(args.repeat if want("ingest") else 1):
                db = figures.measure("ingest_http", store, Database, store)
                try:
                    rate = None if db is None else figures.measure("ingest_http", store, ingest_http, db, args.jobs)
                    if rate is None:
                        http_failed += 1
                    else:
                        http_rates.append(rate)
                    if r == 0:
                        for name, report in (("disk", report_disk), ("rebuild", report_rebuild)):
                            if not want(name):
                                continue
                            if rate is None:  # they measure the jobs that ingest_http stored
                                figures.skipped(name, store, "ingest_http failed")
                            else:
                                figures.measure(name, store, report, db, store)
                    raw = None if db is None else figures.measure("ceiling_insert", store, ceiling_insert, db,
                                                                  args.jobs)
                    if raw is not None:
                        raw_rates.append(raw)
                finally:
                    if db is not None:
                        figures.measure("drop database", store, db.drop)
            if want("ingest"):
                if http_rates and raw_rates:
                    h, c = statistics.median(http_rates), statistics.median(raw_rates)
                    line("ingest_http", store, f"{h:,.0f} jobs/s ({_runs(http_rates, http_failed)})",
                         f"ceiling executemany {c:,.0f} rows/s ({h / c:.0%}); target ≥ 5,000 on PG")
                elif http_rates:
                    h = statistics.median(http_rates)
                    line("ingest_http", store, f"{h:,.0f} jobs/s ({_runs(http_rates, http_failed)})",
                         "ceiling not measured: ceiling_insert failed")
                else:
                    figures.skipped("ingest_http", store, "every run failed")
        if want("commands"):
            for validate in (True, False):
                name = f"ingest_commands ({'with' if validate else 'without'} validation)"
                rates = [rate for _ in range(args.repeat)
                         if (rate := figures.measure(name, store, commands_rate, store, min(args.jobs, 50_000),
                                                     validate)) is not None]
                if rates:
                    line("ingest_commands", store, f"{statistics.median(rates):,.0f} jobs/s "
                         f"({'with' if validate else 'without'} decoding+validation)")
        if want("latency"):
            figures.measure("post_latency", store, report_latency, store)
    if figures.failed:
        print(f"# {len(figures.failed)} figure(s) failed:", flush=True)
        for name, store, reason in figures.failed:
            print(f"#   {name} ({store}): {reason}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
