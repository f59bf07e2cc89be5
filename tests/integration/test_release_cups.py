"""Secure release through the real thing: a private cupsd with ippeveprinter, the agent's wrapped
secure queue and its release queue, the real server (`pageledger up`) and the release service
as a process of its own. Held, not printed, not in usage; released; printed once with exactly
the held bytes; in usage at its price. A stopped printer keeps the job held with the reason; a
server that cannot be reached prints nothing unreleased."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from agent.cups_release import CupsJobRef, CupsRelease
from tests import sample_documents as docs
from tests.conftest import wait_until
from tests.integration.cups_harness import CupsHarness
from tests.integration.test_agent_cups import WrappedQueue

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.cups


@pytest.fixture(scope="module")
def cups():
    harness = CupsHarness().start()
    yield harness
    harness.stop()


def cli(server, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pageledger.cli", *args], cwd=server.workdir, env=server.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def user_token(server, login: str) -> str:
    return json.loads(cli(server, "tokens", "issue", "--role", "user", "--name", login).splitlines()[-1])["token"]


class ReleaseService:
    """`python -m agent.release_service` against the live server and the private cupsd."""

    def __init__(self, server, cups: CupsHarness, state: Path, *extra: str):
        self.log = state / "release-service.log"
        state.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.release_service", "--state-dir", str(state), "--cups-server", cups.server,
             "--services-url", server.url, *extra],
            env={**os.environ, "PYTHONPATH": str(ROOT), "PAGELEDGER_RELEASE_TOKEN": server.agent_token},
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def secure_queue(cups, live_server, tmp_path):
    cli(live_server, "printers", "secure", "vault", "on")
    cli(live_server, "printers", "set-cost", "vault", "--mono", "0.10", "--colour", "0.50")
    queue = WrappedQueue(cups, tmp_path, "vault")
    installed = queue.install(live_server.url, live_server.agent_token, "--secure-queues", "vault")
    assert installed.returncode == 0, installed.stderr
    service = ReleaseService(live_server, cups, tmp_path / "release-service")
    yield queue
    service.stop()
    queue.uninstall()


def held_jobs(server, token):
    r = requests.get(server.url + "/api/v1/held-jobs", headers=server.headers(token), timeout=10)
    r.raise_for_status()
    return r.json()["jobs"]


def hold(cups, queue, server, token, tmp_path, name: str, pages: int = 2):
    """lp a PDF to the secure queue as alice: held on the server, nothing at the printer."""
    before = len(cups.printed_documents())
    _job, state = queue.print(docs.pdf(tmp_path / f"{name}.pdf", pages), user="alice", title=name)
    assert state["job-state"] == "completed", (state, cups.error_log()[-2000:])
    assert f"held for release" in cups.error_log()
    job = wait_until(lambda: next((j for j in held_jobs(server, token) if j["document"] == name and j["ready"]),
                                  None), timeout=15)
    assert len(cups.printed_documents()) == before
    return job


def usage(server):
    r = requests.get(server.url + "/api/v1/usage?group_by=printer", headers=server.headers(server.admin_token),
                     timeout=10)
    return {t["printer"]: (t["jobs"], t["cost"]) for t in r.json()["totals"]}


def release(server, token, jobs, **extra):
    return requests.post(server.url + "/api/v1/held-jobs/release", json={"jobs": jobs, **extra},
                         headers=server.headers(token), timeout=10)


def test_a_released_job_prints_once_with_the_held_bytes_and_only_then_counts(cups, live_server, secure_queue,
                                                                           tmp_path):
    # The install made the release queue: raw, not shared, straight to the real printer.
    assert cups.device_uri("vault-release") == cups.printer_uri
    shared = cups.run("lpoptions", "-h", cups.server, "-p", "vault-release").stdout
    assert "printer-is-shared=false" in shared
    alice, bob = user_token(live_server, "alice"), user_token(live_server, "bob")
    job = hold(cups, secure_queue, live_server, alice, tmp_path, "payslips")
    assert job["state"] == "held" and usage(live_server) == {}
    assert held_jobs(live_server, bob) == []  # bob sees none of alice's jobs
    refused = release(live_server, bob, [job["job_id"]])
    assert refused.status_code == 400 and "jobs.0" in refused.json()["errors"]
    (spooled,) = (live_server.workdir / "var" / "spool").glob("*/*")
    held_bytes = spooled.read_bytes()

    before = len(cups.printed_documents())
    started = time.monotonic()
    r = release(live_server, alice, [job["job_id"]])
    assert r.status_code == 200, r.text
    again = release(live_server, alice, [job["job_id"]])  # released twice: refused, prints once
    assert again.status_code == 400 and "already" in json.dumps(again.json()["errors"])
    [printed] = cups.wait_printed(before + 1)[before:]
    took = time.monotonic() - started
    assert printed.read_bytes() == held_bytes  # exactly the held bytes, unfiltered
    attributes = cups.printed_attributes(printed)
    assert attributes["IPP_JOB_ORIGINATING_USER_NAME"] == "alice"
    jobs = wait_until(lambda: (js := requests.get(live_server.url + "/api/v1/jobs", timeout=10,
                                                  headers=live_server.headers(alice)).json()["jobs"])
                      and js[0]["status"] == "printed" and js, timeout=20)
    assert float(jobs[0]["cost"]) == pytest.approx(0.20)
    assert {k: (n, float(c)) for k, (n, c) in usage(live_server).items()} == {"vault": (1, pytest.approx(0.20))}  # counted once printed, at vault's price
    assert not spooled.exists()  # its data left the server once CUPS had printed it
    time.sleep(1.0)
    assert len(cups.printed_documents()) == before + 1  # once
    assert took < 15

    # A CUPS job is named with its time-at-creation: after a job cache wipe the same id is another job.
    cups_release = CupsRelease(cups.server, tmp_path)
    ref = CupsJobRef(cups.server, "vault-release", 1, 0)
    real = cups_release.job_state(ref)
    assert real.state == "completed"
    created = int(cups.run("ipptool", "-t", "-d", "job_id=1", f"ipp://{cups.server}/printers/vault-release",
                           str(cups_release._test("job", "")), check=False).stdout.split("time-at-creation (integer) = ")[1].split()[0])
    assert cups_release.job_state(CupsJobRef(cups.server, "vault-release", 1, created)).state == "completed"
    assert cups_release.job_state(CupsJobRef(cups.server, "vault-release", 1, created - 3600)).state == "gone"


def test_a_stopped_printer_keeps_the_job_held_with_the_reason(cups, live_server, secure_queue, tmp_path):
    alice = user_token(live_server, "alice")
    job = hold(cups, secure_queue, live_server, alice, tmp_path, "contract")
    cups.run("cupsdisable", "-h", cups.server, "-r", "toner low, being replaced", "vault-release")
    try:
        before = len(cups.printed_documents())
        assert release(live_server, alice, [job["job_id"]]).status_code == 200
        back = wait_until(lambda: next((j for j in held_jobs(live_server, alice)
                                        if j["job_id"] == job["job_id"] and j["reason"]), None), timeout=20)
        assert back["state"] == "held" and "stopped" in back["reason"] and "toner low" in back["reason"]
        assert len(cups.printed_documents()) == before  # nothing went to a stopped printer
    finally:
        cups.run("cupsenable", "-h", cups.server, "vault-release")
    assert release(live_server, alice, [job["job_id"]]).status_code == 200  # released again, it prints
    cups.wait_printed(before + 1)


def test_with_the_server_down_a_secure_queue_prints_nothing_unreleased(cups, live_server, secure_queue, tmp_path):
    live_server.stop()
    before = len(cups.printed_documents())
    job_id = cups.submit("vault", docs.pdf(tmp_path / "offline.pdf", 1), user="alice", title="offline")
    # The backend gives the job back to cupsd to retry later (CUPS_BACKEND_RETRY): never printed.
    state = wait_until(lambda: (s := cups.job_state("vault", job_id)).get("job-state") in ("pending", "pending-held")
                       and "server cannot be reached" in cups.error_log() and s, timeout=30)
    assert state["job-state"] in ("pending", "pending-held")
    time.sleep(1.0)
    assert len(cups.printed_documents()) == before
    cups.run("cancel", "-h", cups.server, f"vault-{job_id}", check=False)


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


def test_a_card_swipe_releases_all_of_its_holders_jobs_and_an_unknown_card_is_recorded(cups, live_server, tmp_path):
    import hashlib
    import socket

    from tests.conftest import free_port

    cli(live_server, "printers", "secure", "vault", "on")
    cups.run("lpadmin", "-h", cups.server, "-p", "vault-release", "-E", "-v", cups.printer_uri, "-m", "raw")
    listener = socket.create_server(("127.0.0.1", free_port()))
    reader_port = listener.getsockname()[1]
    cli(live_server, "printers", "release", "vault", "--card-reader", f"127.0.0.1:{reader_port}",
        "--card-regex", r"(\d{8})")
    added = subprocess.run([sys.executable, "-m", "pageledger.cli", "users", "add", "dora", "--role", "user",
                            "--password-stdin"], input="a long password 1\n", cwd=live_server.workdir,
                           env=live_server.env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    subprocess.run([sys.executable, "-c", ASSIGN_CARD, "dora", "12345678"], cwd=live_server.workdir,
                   env=live_server.env, check=True, capture_output=True, timeout=60)
    agent = live_server.headers(live_server.agent_token)
    sent = []
    for i in range(2):
        job = {"job_key": f"card/{i}", "user": "dora", "printer": "vault", "submitted_at": "2026-01-05T10:00:00+00:00",
               "pages": 1, "document": f"card job {i}"}
        result = requests.post(live_server.url + "/Services/jobs", json={"jobs": [job]}, headers=agent,
                               timeout=10).json()["results"][0]
        assert result["decision"] == "hold", result
        data = b"%PDF-1.4\n% card job " + str(i).encode() + b"\n%%EOF\n"
        requests.put(f"{live_server.url}/Services/jobs/{result['job_id']}/spool", data=data, timeout=10,
                     headers={**agent, "Content-Type": "application/octet-stream",
                              "X-Content-SHA256": hashlib.sha256(data).hexdigest()}).raise_for_status()
        sent.append(data)
    admin = live_server.admin_token
    wait_until(lambda: len([j for j in held_jobs(live_server, admin) if j["ready"]]) == 2, timeout=15)
    service = ReleaseService(live_server, cups, tmp_path / "release-service")
    try:
        listener.settimeout(30)
        connection, _ = listener.accept()  # the release service connects to the reader
        before = len(cups.printed_documents())
        connection.sendall(b"\r\n")  # an empty swipe: refused, recorded
        connection.sendall(b"99999999\r\n")  # an unknown card: recorded
        connection.sendall(b"ID:12345678=42\n")  # dora's card, with a prefix and a checksum
        printed = cups.wait_printed(before + 2, timeout=30)[before:]
        assert sorted(p.read_bytes() for p in printed) == sorted(sent)  # all her jobs, each once
        connection.sendall(b"12345678\r\n")  # again: nothing left to release, recorded
        time.sleep(1.5)
        assert len(cups.printed_documents()) == before + 2
        log = service.text()
        assert "unknown card" in log and "nothing to release" in log and "empty line" in log
        connection.close()
    finally:
        service.stop()
        listener.close()


def hold_via_services(server, user: str, key: str, data: bytes) -> str:
    import hashlib

    agent = server.headers(server.agent_token)
    job = {"job_key": key, "user": user, "printer": "vault", "submitted_at": "2026-01-05T10:00:00+00:00",
           "pages": 1, "document": key}
    result = requests.post(server.url + "/Services/jobs", json={"jobs": [job]}, headers=agent,
                           timeout=10).json()["results"][0]
    assert result["decision"] == "hold", result
    requests.put(f"{server.url}/Services/jobs/{result['job_id']}/spool", data=data, timeout=10,
                 headers={**agent, "Content-Type": "application/octet-stream",
                          "X-Content-SHA256": hashlib.sha256(data).hexdigest()}).raise_for_status()
    wait_until(lambda: any(j["job_id"] == result["job_id"] and j["ready"]
                           for j in held_jobs(server, server.admin_token)), timeout=15)
    return result["job_id"]


def test_a_restarted_release_service_submits_nothing_twice(cups, live_server, tmp_path):
    """The release service stops after CUPS took the job and before it reported it: the one that
    starts again follows that CUPS job instead of submitting the job again."""
    from agent.release_service import Journal, ReleaseClient, ReleaseService as Service

    cli(live_server, "printers", "secure", "vault", "on")
    cups.run("lpadmin", "-h", cups.server, "-p", "vault-release", "-E", "-v", cups.printer_uri, "-m", "raw")
    job_id = hold_via_services(live_server, "erin", "restart/1", b"%PDF-1.4\n% once only\n%%EOF\n")
    admin = live_server.admin_token
    assert release(live_server, admin, [job_id]).status_code == 200
    state = tmp_path / "rs"
    state.mkdir()
    # The service serves the release queues its cupsd has (lpstat -v), and only those.
    served = CupsRelease(cups.server, state).release_queues()
    assert "vault-release" in served and all(q.endswith("-release") for q in served)

    def service() -> Service:
        return Service(ReleaseClient(live_server.url, live_server.agent_token, timeout=10),
                       CupsRelease(cups.server, state), Journal(state / "journal.sqlite3"), state)

    before = len(cups.printed_documents())
    first = service()
    wait_until(lambda: first.take_orders(0.5) and first.stats.submitted, timeout=20)
    first.journal.close()  # gone before following or reporting anything

    second = service()
    deadline = time.monotonic() + 30
    while second.stats.printed == 0 and time.monotonic() < deadline:
        second.take_orders(0.2)
        second.follow_jobs()
    assert (second.stats.submitted, second.stats.printed) == (0, 1)
    cups.wait_printed(before + 1)
    time.sleep(1.0)
    assert len(cups.printed_documents()) == before + 1
    wait_until(lambda: requests.get(live_server.url + "/api/v1/jobs", headers=live_server.headers(admin),
                                    timeout=10).json()["jobs"][0]["status"] == "printed", timeout=15)

    # Stopped between writing the journal and lp's answer: cannot tell whether CUPS has it, so
    # nothing is sent again: the job is held again for its owner, who sees why.
    other = hold_via_services(live_server, "erin", "restart/2", b"%PDF-1.4\n% maybe\n%%EOF\n")
    assert release(live_server, admin, [other]).status_code == 200
    order = wait_until(lambda: next(iter(second.client.orders(0.5)), None), timeout=15)
    second.journal.submitting(f"{order['job_id']}@{order['released_at']}", order["job_id"])
    second.take_orders(0.5)
    back = wait_until(lambda: next((j for j in held_jobs(live_server, admin) if j["job_id"] == other), None),
                      timeout=15)
    assert "interrupted" in back["reason"] and second.stats.submitted == 0
    second.journal.close()


def test_up_runs_the_release_service_beside_the_server(cups, tmp_path):
    """The one-host install: `pageledger up` with release_cups set prints released jobs itself."""
    from tests.conftest import descendants, make_live_server

    server = make_live_server(tmp_path, PAGELEDGER_RELEASE_CUPS=cups.server)
    server.start()
    try:
        cli(server, "printers", "secure", "vault", "on")
        cups.run("lpadmin", "-h", cups.server, "-p", "vault-release", "-E", "-v", cups.printer_uri, "-m", "raw")
        before = len(cups.printed_documents())
        data = b"%PDF-1.4\n% one host\n%%EOF\n"
        job_id = hold_via_services(server, "finn", "up/1", data)
        assert release(server, server.admin_token, [job_id]).status_code == 200
        [printed] = cups.wait_printed(before + 1, timeout=30)[before:]
        assert printed.read_bytes() == data
        children = descendants(server.proc.pid)
    finally:
        server.stop()
    assert children and not any(os.path.exists(f"/proc/{pid}") and
                                "release_service" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
                                for pid in children)


def printer_errors(server, since: str, until: str) -> list[dict]:
    r = requests.get(server.url + "/api/v1/reports/workflow-issues", params={"from": since, "to": until},
                     headers=server.headers(server.admin_token), timeout=10)
    r.raise_for_status()
    return next(s for s in r.json()["sections"] if s["name"] == "printer_errors")["rows"]


def test_a_printer_disabled_in_cups_is_recorded_in_error_until_it_is_enabled(cups, live_server, tmp_path):
    """The release service asks cupsd for every printer's state (every second here) and posts
    the changes: `cupsdisable` opens an error period in the workflow report, `cupsenable` ends it."""
    cups.add_queue("dock")
    service = ReleaseService(live_server, cups, tmp_path / "release-service", "--printer-poll-seconds", "1")
    since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        time.sleep(2)  # the first poll: every printer posted, none in error
        assert printer_errors(live_server, since, until) == []
        cups.run("cupsdisable", "-h", cups.server, "-r", "paper jam in tray 2", "dock")
        disabled = datetime.now(timezone.utc)
        [row] = wait_until(lambda: printer_errors(live_server, since, until), timeout=20)
        assert row["printer"] == "dock" and row["ended_at"] is None
        assert row["reasons"] == "paused" and row["message"] == "paper jam in tray 2"
        started = datetime.fromisoformat(row["started_at"])
        assert abs((started - disabled).total_seconds()) < 5
        time.sleep(2.5)  # polled again, unchanged: nothing more recorded
        assert printer_errors(live_server, since, until) == [row]
        cups.run("cupsenable", "-h", cups.server, "dock")
        [ended] = wait_until(lambda: [r for r in printer_errors(live_server, since, until) if r["ended_at"]],
                             timeout=20)
        assert ended["started_at"] == row["started_at"]
        assert 0 < (datetime.fromisoformat(ended["ended_at"]) - started).total_seconds() < 30
    finally:
        service.stop()
        cups.run("cupsenable", "-h", cups.server, "dock", check=False)
    assert "printer dock in error: paused" in service.text()
