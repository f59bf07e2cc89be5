"""The PA6 migration's benchmark: legacy jobs migrated per second, beside the ODBC fetch rate
alone (its ceiling), and peak memory over migrations of growing size (it should stay flat).

    .venv/bin/python -m bench.pa6_bench [--jobs 200000] [--legacy sqlite,postgresql]
                                        [--target sqlite,postgresql] [--repeat 3]
                                        [--memory 100000,1000000]

`migrate` times the replay (users, printers, jobs through the command handlers, checkpoints
included) in-process; the projections' catch-up and the reconciliation pass are timed beside
it. `memory` runs the real command (`python -m tools.pa6_migrate migrate`, with catch-up and
reconciliation) in a child process per size and reports its peak RSS. Medians of --repeat.
Like bench/run.py, it asserts nothing and prints what it measured.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from pageledger.bootstrap import build_runtime  # noqa: E402
from pageledger.settings import Settings  # noqa: E402
from tools.pa6_migrate import sample_legacy as L  # noqa: E402
from tools.pa6_migrate import source as src  # noqa: E402
from tools.pa6_migrate.cli import _target  # noqa: E402
from tools.pa6_migrate.mapping import load_mapping  # noqa: E402
from tools.pa6_migrate.reconcile import legacy_totals  # noqa: E402
from tools.pa6_migrate.replay import Migrator, Options  # noqa: E402
from tools.pa6_migrate.rows import SiteZone  # noqa: E402

PG = os.environ.get("PAGELEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
ZONE = "Europe/Berlin"


def load() -> str:
    """The load averages (1, 5, 15 min) now: the machine is shared, so every figure carries them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def line(name: str, where: str, value: str, note: str = "") -> None:
    print(f"{name:<16} {where:<24} {value:<34} load {load():<16} {note}", flush=True)


class Databases:
    """Fresh databases, dropped at the end."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pa6bench-"))
        self.pg: list[str] = []

    def pg_database(self) -> str:
        name = f"i18_pa6bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.pg.append(name)
        return name

    def legacy(self, kind: str, n: int) -> str:
        lg = L.build(n, bad=False, text_dates=(kind == "sqlite"))
        if kind == "sqlite":
            return L.to_sqlite(lg, self.tmp / f"legacy-{uuid.uuid4().hex[:6]}.db")
        name = self.pg_database()
        L.to_postgres(lg, f"{PG}/{name}")
        return L.pg_dsn(name)

    def target(self, kind: str) -> Settings:
        data = self.tmp / f"var-{uuid.uuid4().hex[:6]}"
        url = f"sqlite:///{data / 'pageledger.db'}" if kind == "sqlite" else f"{PG}/{self.pg_database()}"
        return Settings.load(environ={}, database_url=url, data_dir=data)

    def close(self) -> None:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            for name in self.pg:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)


def fetch_rate(dsn: str) -> float:
    mapping = load_mapping("pa6-default")
    key = mapping.jobs.values["key"].sql
    conn = src.connect(dsn)
    started = time.perf_counter()
    n = sum(len(rows) for rows in src.query(conn, mapping.jobs.select(extra_where=f"{key} IS NOT NULL",
                                                                       order_by=key), batch=5000))
    return n / (time.perf_counter() - started)


def migrate_once(dbs: Databases, dsn: str, target: str, n: int) -> tuple[float, float, float, float]:
    settings = dbs.target(target)
    mapping, zone = load_mapping("pa6-default"), SiteZone(ZONE)
    conn = src.connect(dsn)
    with build_runtime(settings) as runtime:
        started, cpu = time.perf_counter(), time.process_time()
        Migrator(conn, mapping, zone, _target(runtime), Options(progress=False)).run()
        replay, cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        runtime.catch_up()
        catch_up = time.perf_counter() - started
    started = time.perf_counter()
    legacy_totals(conn, mapping, zone)
    reconcile = time.perf_counter() - started
    return n / replay, n / catch_up, n / reconcile, n / cpu


def peak_memory(dbs: Databases, n: int, target: str) -> tuple[float, float]:
    dsn = dbs.legacy("sqlite", n)
    settings = dbs.target(target)
    build_runtime(settings).close()  # `pageledger db create`
    command = [sys.executable, "-m", "tools.pa6_migrate", "--log-level", "WARNING", "migrate", "--dsn", dsn,
               "--mapping", "pa6-default", "--site-zone", ZONE, "--database-url", settings.resolved_database_url,
               "--data-dir", str(settings.data_dir), "--rejects", str(dbs.tmp / "r.csv"),
               "--reconciliation", str(dbs.tmp / "c.csv"), "--no-progress"]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.DEVNULL)
    # The child's own high-water mark, read from /proc while it runs: getrusage's ru_maxrss of a
    # child also counts the pages it shared with this process between fork and exec (here the
    # legacy rows this process just built), which measured this process, not the migration.
    peak_kib = 0
    while child.poll() is None:
        try:
            status_text = Path(f"/proc/{child.pid}/status").read_text()
            peak_kib = max(peak_kib, int(status_text.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.2)
    if child.returncode:
        raise RuntimeError(f"migration of {n} jobs exited with status {child.returncode}")
    return peak_kib / 1024, time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=200_000)
    p.add_argument("--legacy", default="sqlite,postgresql")
    p.add_argument("--target", default="sqlite,postgresql")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--memory", default="", help="sizes for the peak-memory runs, e.g. 100000,1000000")
    p.add_argument("--memory-target", default="postgresql", help="PageLedger's store for the peak-memory runs")
    args = p.parse_args()
    print(f"PA6 migration benchmark: {args.jobs:,} legacy jobs, medians of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    dbs = Databases()
    failed = False
    try:
        for legacy in filter(None, args.legacy.split(",")):
            dsn = dbs.legacy(legacy, args.jobs)
            rates = [fetch_rate(dsn) for _ in range(args.repeat)]
            line("odbc_fetch", f"{legacy} legacy", f"{statistics.median(rates):,.0f} rows/s",
                 "the ceiling: fetchmany(5000) of the mapped job query alone")
            for target in filter(None, args.target.split(",")):
                try:
                    runs = [migrate_once(dbs, dsn, target, args.jobs) for _ in range(args.repeat)]
                except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
                    line("migrate", f"{legacy} -> {target}", f"FAILED: {exc}")
                    failed = True
                    continue
                line("migrate", f"{legacy} -> {target}", f"{statistics.median(r[0] for r in runs):,.0f} jobs/s",
                     "replay through the handlers, checkpoints included")
                line("migrate_cpu", f"{legacy} -> {target}",
                     f"{statistics.median(r[3] for r in runs):,.0f} jobs/CPU-s",
                     "the same replay per CPU second of this process (both threads; the database server's "
                     "own work not included): less sensitive to the shared machine's load")
                line("catch_up", f"{legacy} -> {target}", f"{statistics.median(r[1] for r in runs):,.0f} jobs/s",
                     "projections after the replay")
                line("reconcile_read", f"{legacy}", f"{statistics.median(r[2] for r in runs):,.0f} rows/s",
                     "the legacy pass of the reconciliation")
        for size in (int(s) for s in args.memory.split(",") if s):
            rss, seconds = peak_memory(dbs, size, args.memory_target)
            line("peak_memory", f"sqlite -> {args.memory_target}", f"{rss:,.0f} MiB at {size:,} jobs",
                 f"whole command incl. catch-up and reconciliation, {seconds:,.0f} s")
    finally:
        dbs.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
