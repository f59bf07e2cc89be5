"""A running server meets an event its jobs projection cannot apply: every web worker's
/healthz names it (the runner is another process), the runner logs one line per attempt with
a growing pause instead of a traceback a second, and the operator's skip lets it go on."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid

from domain.jobs import PrintJob
from pageledger.bootstrap import build_runtime
from pageledger.settings import Settings
from tests.conftest import make_live_server, wait_until
from tests.e2e.test_projection_runner import a_job, health, listed_documents, post_jobs
from tests.integration.test_poison_events import FACTS


def test_a_running_server_names_a_poison_event_and_goes_on_after_the_operator_skips_it(
        tmp_path, pg_database_url, start_server):
    server = start_server(make_live_server(tmp_path, pg_database_url))
    post_jobs(server, [a_job("before")])
    wait_until(lambda: "before.pdf" in listed_documents(server))
    store = build_runtime(Settings.load(environ={}, database_url=pg_database_url, data_dir=tmp_path / "x"),
                          migrate=False)
    try:
        store.app.record(events=[PrintJob.tracked(uuid.uuid4(), **{**FACTS, "size": 2**63})])
        poison = int(store.app.recorder.max_notification_id())
    finally:
        store.close()
    post_jobs(server, [a_job("after")])
    failed_at = time.monotonic()
    status, body = wait_until(lambda: (h := health(server))[0] == 503 and h[1].get("failed") and h, timeout=15)
    [problem] = [p for p in body["problems"] if p.get("projection") == "jobs"]
    assert problem["position"] == poison and "cannot apply" in problem["problem"], body
    assert body["runner"] == "running"
    time.sleep(max(0.0, 4.5 - (time.monotonic() - failed_at)))  # attempts at 0, 1, 3 s (then 7 s)
    log = (server.workdir / "server.log").read_text()
    lines = [line for line in log.splitlines() if "cannot apply the event" in line]
    assert 2 <= len(lines) <= 4, lines
    assert "Traceback" not in log

    env = dict(server.env)
    skipped = subprocess.run([sys.executable, "-m", "pageledger.cli", "projections", "repair", "--skip", "jobs",
                              "--event", str(poison)], env=env, cwd=server.workdir, capture_output=True,
                             text=True, timeout=60)
    assert skipped.returncode == 0, skipped.stderr
    wait_until(lambda: health(server)[0] == 200, timeout=10)  # within the runner's next look (1 s)
    assert {"before.pdf", "after.pdf"} <= listed_documents(server)
