"""/healthz says when the read models are not moving: no projection runner on any node, or a
projection whose events wait too long or pile up."""
from __future__ import annotations

import os
import signal
import time

from tests.conftest import make_live_server, wait_until
from tests.e2e.test_projection_runner import a_job, health, listed_documents, post_jobs, runner_pid
from tools.sample_jobs import sample_jobs


def test_a_node_without_projections_reports_whether_another_node_runs_them(tmp_path, pg_database_url, start_server):
    url = pg_database_url
    projections_node = start_server(make_live_server(tmp_path, url, name="node-a"))
    web_node = start_server(make_live_server(tmp_path, url, name="node-b", command=("serve", "--no-projections")))
    web_node.tokens = projections_node.tokens
    assert not (web_node.workdir / "var" / "projections.pid").exists()
    status, body = health(web_node)
    assert status == 200 and body["runner"] == "running", body

    projections_node.kill()  # the whole node, runner included, as a crash would
    status, body = wait_until(lambda: (h := health(web_node))[0] == 503 and h, timeout=15)
    assert body["status"] == "unhealthy" and body["runner"] == "not running", body
    assert any("runner" in p["problem"] for p in body["problems"]), body
    # Writes still work on this node; their read models wait for a runner.
    post_jobs(web_node, [a_job("while-no-runner")])
    time.sleep(0.5)
    assert "while-no-runner.pdf" not in listed_documents(web_node)

    projections_node.start()
    wait_until(lambda: health(web_node)[0] == 200, timeout=15)
    wait_until(lambda: "while-no-runner.pdf" in listed_documents(web_node), timeout=10)


def test_healthz_names_a_projection_whose_events_wait_too_long(tmp_path, pg_database_url, start_server):
    """A runner that is alive (it holds the runner lock) but stuck: SIGSTOP stands for a hung
    thread. A few waiting events are fine for a moment; the same events waiting more than
    30 seconds are not."""
    url = pg_database_url
    server = start_server(make_live_server(tmp_path, url))
    runner = runner_pid(server)
    wait_until(lambda: health(server)[0] == 200)
    os.kill(runner, signal.SIGSTOP)
    try:
        posted_at = time.monotonic()
        post_jobs(server, [a_job("stuck")])
        status, body = health(server)
        assert status == 200 and body["runner"] == "running", body  # young and few: not a problem yet
        # The new user's seat is taken (and recorded) a moment before the job itself: the seat
        # projections may be named one poll before the job's. Wait for the job's to be named.
        status, body = wait_until(lambda: (h := health(server))[0] == 503 and {"jobs", "usage_daily"} <= {
            p.get("projection") for p in h[1]["problems"]} and h, timeout=45, interval=0.5)
        assert time.monotonic() - posted_at >= 30
        problems = {p["projection"]: p for p in body["problems"] if "projection" in p}
        assert {"jobs", "usage_daily"} <= set(problems), body
        assert problems["jobs"]["waiting_seconds"] >= 30 and problems["jobs"]["events_behind"] >= 1, body
    finally:
        os.kill(runner, signal.SIGCONT)
    wait_until(lambda: health(server)[0] == 200, timeout=10)
    assert "stuck.pdf" in listed_documents(server)


def test_healthz_names_a_projection_too_many_events_behind(tmp_path, pg_database_url, start_server):
    url = pg_database_url
    server = start_server(make_live_server(tmp_path, url))
    runner = runner_pid(server)
    wait_until(lambda: health(server)[0] == 200)
    os.kill(runner, signal.SIGSTOP)
    try:
        for seed in range(6):
            post_jobs(server, list(sample_jobs(2000, seed=seed, key_prefix=f"backlog{seed}")))
        status, body = health(server)
        assert status == 503, body
        problems = {p["projection"]: p for p in body["problems"] if "projection" in p}
        assert problems["jobs"]["events_behind"] >= 12000, body
        assert "jobs" in problems["jobs"]["problem"] and "behind" in problems["jobs"]["problem"], body
    finally:
        os.kill(runner, signal.SIGCONT)
    status, body = wait_until(lambda: (h := health(server))[0] == 200 and h, timeout=30)
    assert body["problems"] == []
