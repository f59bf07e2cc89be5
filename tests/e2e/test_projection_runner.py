"""The read models keep moving whatever happens to the server's processes: a web worker that
dies, a projection runner that dies, a stop."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests

from tests.conftest import descendants, make_live_server, wait_until
from tools.sample_jobs import sample_jobs


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def runner_pid(server) -> int:
    pid_file = server.workdir / "var" / "projections.pid"
    return int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip()))


def workers(server, runner: int) -> set[int]:
    """The gunicorn workers: the master's children, less the projection runner."""
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    return {int(p) for p in children} - {runner}


def post_jobs(server, jobs):
    r = requests.post(server.url + "/Services/jobs", json={"jobs": jobs},
                      headers=server.headers(server.agent_token), timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def listed_documents(server) -> set[str]:
    r = requests.get(server.url + "/api/v1/jobs", params={"limit": 500},
                     headers=server.headers(server.admin_token), timeout=10)
    assert r.status_code == 200, r.text
    return {j["document"] for j in r.json()["jobs"]}


def health(server) -> tuple[int, dict]:
    r = requests.get(server.url + "/healthz", timeout=10)
    return r.status_code, r.json()


def a_job(name: str) -> dict:
    return dict(next(sample_jobs(1, key_prefix=name)), document=f"{name}.pdf")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_jobs_are_still_projected_after_a_web_worker_dies(tmp_path, start_server, sig):
    server = start_server(make_live_server(tmp_path))
    runner = runner_pid(server)
    before = workers(server, runner)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, sig)
    # gunicorn replaces the worker; the projection runner must not go down with the old one.
    wait_until(lambda: len(after := workers(server, runner)) == 2 and victim not in after and after, timeout=20)
    post_jobs(server, [a_job("after-worker-died")])
    wait_until(lambda: "after-worker-died.pdf" in listed_documents(server), timeout=5)
    assert alive(runner) and runner_pid(server) == runner
    assert health(server)[0] == 200


def test_a_projection_runner_that_dies_is_restarted_and_catches_up(tmp_path, start_server):
    server = start_server(make_live_server(tmp_path))
    first = runner_pid(server)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not alive(first), timeout=5)
    # Posted while no runner runs: the restarted one projects it.
    post_jobs(server, [a_job("while-runner-down")])
    second = wait_until(lambda: (pid := runner_pid(server)) != first and alive(pid) and pid, timeout=15)
    assert second in descendants(server.proc.pid)
    wait_until(lambda: "while-runner-down.pdf" in listed_documents(server), timeout=10)
    wait_until(lambda: health(server)[0] == 200, timeout=10)
    assert "restarting" in (server.workdir / "server.log").read_text()


def test_stopping_the_server_prints_no_multiprocessing_errors(tmp_path, start_server):
    server = start_server(make_live_server(tmp_path))
    post_jobs(server, [a_job("before-stop")])
    wait_until(lambda: "before-stop.pdf" in listed_documents(server), timeout=5)
    server.stop()
    assert server.proc.returncode is not None
    log = (server.workdir / "server.log").read_text()
    assert "can only join a child process" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
