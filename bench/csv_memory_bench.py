"""Memory of the real web process while it streams a big CSV: `pageledger up` (gunicorn, its
workers and the projection process) on a database of generated jobs, and
GET /api/v1/reports/jobs?format=csv for the whole month over HTTP.

    .venv/bin/python -m bench.csv_memory_bench [--jobs 1000000] [--store postgresql|sqlite]
    .venv/bin/python -m bench.csv_memory_bench --database-url postgresql://.../db   # jobs already there

The jobs are generated straight into the read-model tables as bench.reports_bench does. The
resident set size (VmRSS) of every process of the server is read from /proc every 100 ms, from
before the request (idle) to the last byte; the worker that served it is the one whose RSS moved
most. The body is read in 64 KiB pieces and thrown away, so the client holds nothing.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reports_bench import database, generate  # noqa: E402


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc/*/stat's parent field)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:90]
    except OSError:
        return "?"


def wait_until_up(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server did not answer on port {port}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--store", default="postgresql", choices=("postgresql", "sqlite"))
    ap.add_argument("--database-url", help="an existing database of generated jobs (nothing generated)")
    ap.add_argument("--port", type=int, default=6390)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="plbench-csv-"))
    drop = lambda: None  # noqa: E731
    url = args.database_url
    if url is None:
        import migrations
        from adapters.stores import read_model_engine

        url, drop = database(args.store, tmp)
        engine = read_model_engine(url, writer=True)
        migrations.upgrade(engine)
        print(f"generated {args.jobs:,} jobs in {generate(engine, args.jobs):.1f} s", flush=True)
        engine.dispose()
    server = subprocess.Popen([sys.executable, "-m", "pageledger.cli", "--database-url", url, "--data-dir",
                               str(tmp / "var"), "up", "--port", str(args.port), "--https-port", "-1"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_until_up(args.port)
        token = json.loads((tmp / "var" / "first-tokens.json").read_text())["admin_token"]
        time.sleep(3)  # let the workers settle
        pids = descendants(server.pid)
        idle = {p: rss_mib(p) for p in pids}
        peak = dict(idle)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for p in descendants(server.pid):
                    peak[p] = max(peak.get(p, 0.0), rss_mib(p))
                    idle.setdefault(p, peak[p])
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=600)
        c.request("GET", "/api/v1/reports/jobs?from=2026-11-01&to=2026-11-30&timezone=UTC&format=csv",
                  headers={"Authorization": f"Bearer {token}"})
        resp = c.getresponse()
        size = 0
        while piece := resp.read(65536):
            size += len(piece)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        load = open("/proc/loadavg").read().split()[0]
        print(f"HTTP {resp.status}: {size / 1e6:.0f} MB of CSV in {seconds:.1f} s  load {load}")
        for p in sorted(peak, key=lambda p: peak[p] - idle[p], reverse=True):
            print(f"  pid {p:>7}  idle {idle[p]:6.0f} MiB  peak {peak[p]:6.0f} MiB  (+{peak[p] - idle[p]:4.0f})  "
                  f"{command_line(p)}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        drop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
