"""Secure release benchmark (run by hand; asserts nothing, prints what it measured).

    .venv/bin/python -m bench.release_bench [--held 100000] [--latency-jobs 40] [--repeat 5]

Figures:
  restart          build the runtime, catch up, one expiry pass and the web app, on an embedded
                   store with 0 and with --held held jobs (median of --repeat); and `pageledger
                   up` to its first healthy /healthz, once each
  list_release     list 1,000 held jobs of one user (the read model), then release all 1,000 in
                   one request (the command), median of --repeat
  release_latency  from POST /api/v1/held-jobs/release to the job accepted by CUPS (lp returned
                   its job id, at the release service), p50/p95 over --latency-jobs releases,
                   through a real `pageledger up`, private cupsd and ippeveprinter; and, for
                   comparison, `lp` to the document kept by ippeveprinter
  swipe_to_device  a card line sent by a loopback reader to the document kept by ippeveprinter
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from api.app import create_app  # noqa: E402
from commands.job_reports import parse_batch  # noqa: E402
from commands.jobs import TrackJobs  # noqa: E402
from commands.release import Caller  # noqa: E402
from pageledger.bootstrap import build_runtime  # noqa: E402
from pageledger.settings import Settings  # noqa: E402
from projections.held_jobs import waiting_jobs  # noqa: E402
from tools.sample_jobs import sample_jobs  # noqa: E402

BATCH = 500


def line(name: str, value: str) -> None:
    print(f"{name:<16} {value}", flush=True)


def settings_for(data_dir: Path) -> Settings:
    return Settings.load(environ={}, data_dir=data_dir)


def fill(data_dir: Path, held: int, user_of=lambda i: f"user{i % 500}") -> None:
    """`held` jobs held on the secure queue "vault" (Secured events; no data, as far as a restart is
    concerned a held job is its rows)."""
    rt = build_runtime(settings_for(data_dir))
    try:
        rt.set_secure_hold("vault", True)
        track = TrackJobs(rt.app, rt.printers, clock=rt.clock)
        done = 0
        while done < held:
            n = min(BATCH, held - done)
            jobs = [dict(j, job_key=f"bench/{done + i}", user=user_of(done + i), printer="vault")
                    for i, j in enumerate(sample_jobs(n))]
            track(parse_batch(json.dumps({"jobs": jobs}).encode()))
            done += n
        rt.catch_up()
    finally:
        rt.close()


def restart_once(data_dir: Path) -> float:
    started = time.perf_counter()
    rt = build_runtime(settings_for(data_dir))
    try:
        rt.catch_up()
        rt.release_housekeeping.expire_due()
        create_app(rt)
    finally:
        elapsed = time.perf_counter() - started
        rt.close()
    return elapsed


def up_once(data_dir: Path) -> float:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env.update(PYTHONPATH=str(ROOT), PAGELEDGER_DATA_DIR=str(data_dir))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pageledger.cli", "up", "--port", str(port)], env=env,
                            cwd=data_dir.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.perf_counter() - started > 180:
                raise RuntimeError("pageledger up did not become healthy")
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_restart(held: int, repeat: int) -> None:
    for count in (0, held):
        tmp = Path(tempfile.mkdtemp(prefix="plrelbench-"))
        try:
            data = tmp / "var"
            t0 = time.perf_counter()
            fill(data, count)
            filled = time.perf_counter() - t0
            runs = [restart_once(data) for _ in range(repeat)]
            up = up_once(data)
            line("restart", f"{count:>7} held: runtime+catch-up+expiry+app median {statistics.median(runs) * 1000:.0f} ms "
                            f"(min {min(runs) * 1000:.0f}, max {max(runs) * 1000:.0f}, n={repeat}); "
                            f"`up` to healthy {up:.2f} s (once); filling took {filled:.1f} s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def bench_list_release(repeat: int) -> None:
    lists, releases = [], []
    for _ in range(repeat):
        tmp = Path(tempfile.mkdtemp(prefix="plrelbench-"))
        try:
            data = tmp / "var"
            fill(data, 1000, user_of=lambda i: "alice")
            rt = build_runtime(settings_for(data))
            try:
                rt.catch_up()
                t0 = time.perf_counter()
                with rt.reader.connect() as conn:
                    jobs = waiting_jobs(conn, "alice", limit=1000)
                lists.append(time.perf_counter() - t0)
                assert len(jobs) == 1000
                # Releasing needs the data on the server: a small upload each (not timed).
                for j in jobs:
                    body = j.job_id.encode()
                    rt.hold_job(__import__("uuid").UUID(j.job_id), io.BytesIO(body),
                                sha256=hashlib.sha256(body).hexdigest(), size=len(body))
                t0 = time.perf_counter()
                rt.release_jobs([j.job_id for j in jobs], Caller("alice", admin=False))
                releases.append(time.perf_counter() - t0)
            finally:
                rt.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    line("list_release", f"list 1,000 held jobs median {statistics.median(lists) * 1000:.1f} ms; release all 1,000 "
                         f"in one request median {statistics.median(releases) * 1000:.0f} ms (n={repeat}, SQLite)")


def bench_latency(n: int) -> None:
    from agent.cups_release import CupsRelease
    from agent.release_service import Journal, ReleaseClient, ReleaseService
    from tests.integration.cups_harness import CupsHarness

    cups = CupsHarness().start()
    tmp = Path(tempfile.mkdtemp(prefix="plrelbench-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env.update(PYTHONPATH=str(ROOT), PAGELEDGER_DATA_DIR=str(tmp / "var"), PAGELEDGER_PROJECTION_POLL_SECONDS="0.02")
    stop = threading.Event()
    server = None
    try:
        subprocess.run([sys.executable, "-m", "pageledger.cli", "db", "create"], env=env, cwd=tmp, check=True,
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "pageledger.cli", "printers", "secure", "vault", "on"], env=env,
                       cwd=tmp, check=True, capture_output=True)
        server = subprocess.Popen([sys.executable, "-m", "pageledger.cli", "up", "--port", str(port)], env=env,
                                  cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        tokens = json.loads((tmp / "var" / "first-tokens.json").read_text())
        admin, agent = ({"Authorization": f"Bearer {tokens[k]}"} for k in ("admin_token", "agent_token"))
        requests.put(url + "/api/v1/licence/settings", json={"track_unlicensed": True}, headers=admin).raise_for_status()
        cups.run("lpadmin", "-h", cups.server, "-p", "vault-release", "-E", "-v", cups.printer_uri, "-m", "raw")
        submitted: dict[str, float] = {}
        service = ReleaseService(ReleaseClient(url, tokens["agent_token"], timeout=30),
                                 CupsRelease(cups.server, tmp / "rs"), Journal(tmp / "rs" / "journal.sqlite3"),
                                 tmp / "rs")
        service.on_submitted = lambda job_id, at: submitted.__setitem__(job_id, at)
        import agent.release_service as release_service_module

        release_service_module.READERS_REFRESH_SECONDS = 0.5  # the reader configured below is seen at once
        runner = threading.Thread(target=service.run, args=(stop,), daemon=True)
        runner.start()
        pdf = (ROOT / "tests").exists() and b"%PDF-1.4\n" + b"x" * 20_000 + b"\n%%EOF\n"
        latencies = []
        start_count = len(cups.printed_documents())
        for i in range(n):
            job = dict(next(sample_jobs(1)), job_key=f"lat/{i}", user="alice", printer="vault")
            r = requests.post(url + "/Services/jobs", json={"jobs": [job]}, headers=agent).json()["results"][0]
            requests.put(f"{url}/Services/jobs/{r['job_id']}/spool", data=pdf,
                         headers={**agent, "Content-Type": "application/octet-stream",
                                  "X-Content-SHA256": hashlib.sha256(pdf).hexdigest()}).raise_for_status()
            for _ in range(200):  # the hold reaches the read model
                held = requests.get(url + "/api/v1/held-jobs", headers=admin).json()["jobs"]
                if any(j["job_id"] == r["job_id"] and j["ready"] for j in held):
                    break
                time.sleep(0.01)
            t0 = time.monotonic()
            requests.post(url + "/api/v1/held-jobs/release", json={"jobs": [r["job_id"]]}, headers=admin).raise_for_status()
            while r["job_id"] not in submitted and time.monotonic() - t0 < 30:
                time.sleep(0.002)
            latencies.append(submitted.get(r["job_id"], float("nan")) - t0)
        latencies.sort()
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
        line("release_latency", f"request -> accepted by CUPS p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                                f"max {latencies[-1] * 1000:.0f} ms (n={n})")
        # For comparison: lp to the document kept by ippeveprinter (what the printer sees), once
        # the released jobs have all come out (else one of them would be counted).
        cups.wait_printed(start_count + n, timeout=300)
        arrivals = []
        sample = tmp / "sample.pdf"
        sample.write_bytes(pdf)
        for _ in range(min(n, 10)):
            before = len(cups.printed_documents())
            t0 = time.monotonic()
            cups.run("lp", "-h", cups.server, "-d", "vault-release", "-o", "raw", str(sample))
            cups.wait_printed(before + 1, timeout=60)
            arrivals.append(time.monotonic() - t0)
        line("lp_to_device", f"lp -> document at ippeveprinter median {statistics.median(arrivals) * 1000:.0f} ms "
                             f"(n={len(arrivals)}; includes ippeveprinter's own processing)")
        bench_swipe(url, env, tmp, cups, agent, admin, pdf, min(n, 10))
    finally:
        stop.set()
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        cups.stop()
        shutil.rmtree(tmp, ignore_errors=True)


ASSIGN_CARD = """
import sys
from pageledger.bootstrap import build_runtime
from pageledger.settings import Settings
from domain.users import LOCAL_SOURCE
rt = build_runtime(Settings.load(), migrate=False)
user = rt.app.repository.get(rt.app.user_id(LOCAL_SOURCE, sys.argv[1]))
user.assign_card(sys.argv[2], rt.clock())
rt.app.save(user)
rt.close()
"""


def bench_swipe(url: str, env: dict, tmp: Path, cups, agent: dict, admin: dict, pdf: bytes, n: int) -> None:
    """A card swipe at a loopback reader to the document kept by ippeveprinter."""
    import socket

    listener = socket.create_server(("127.0.0.1", _free_port()))
    port = listener.getsockname()[1]
    run = lambda *a, **kw: subprocess.run([sys.executable, *a], env=env, cwd=tmp, check=True,  # noqa: E731
                                          capture_output=True, text=True, timeout=120, **kw)
    run("-m", "pageledger.cli", "printers", "release", "vault", "--card-reader", f"127.0.0.1:{port}")
    run("-m", "pageledger.cli", "users", "add", "dora", "--role", "user", "--password-stdin",
        input="a long password 1\n")
    run("-c", ASSIGN_CARD, "dora", "31415926")
    listener.settimeout(60)
    connection, _ = listener.accept()
    times = []
    for i in range(n):
        job = dict(next(sample_jobs(1)), job_key=f"swipe/{i}", user="dora", printer="vault")
        r = requests.post(url + "/Services/jobs", json={"jobs": [job]}, headers=agent).json()["results"][0]
        body = pdf + str(i).encode()
        requests.put(f"{url}/Services/jobs/{r['job_id']}/spool", data=body,
                     headers={**agent, "Content-Type": "application/octet-stream",
                              "X-Content-SHA256": hashlib.sha256(body).hexdigest()}).raise_for_status()
        for _ in range(500):
            held = requests.get(url + "/api/v1/held-jobs", headers=admin).json()["jobs"]
            if any(j["job_id"] == r["job_id"] and j["ready"] for j in held):
                break
            time.sleep(0.01)
        before = len(cups.printed_documents())
        t0 = time.monotonic()
        connection.sendall(b"31415926\r\n")
        cups.wait_printed(before + 1, timeout=60)
        times.append(time.monotonic() - t0)
        time.sleep(0.3)
    connection.close()
    listener.close()
    line("swipe_to_device", f"card swipe -> document at ippeveprinter median {statistics.median(times) * 1000:.0f} ms, "
                            f"max {max(times) * 1000:.0f} ms (n={n})")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--held", type=int, default=100_000)
    p.add_argument("--latency-jobs", type=int, default=40)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--only", choices=("restart", "list_release", "latency"))
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    if args.only in (None, "latency"):
        bench_latency(args.latency_jobs)
    if args.only in (None, "list_release"):
        bench_list_release(min(args.repeat, 3))
    if args.only in (None, "restart"):
        bench_restart(args.held, args.repeat)
    print(f"load average after: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
