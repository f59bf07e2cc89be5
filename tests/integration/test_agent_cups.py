"""The agent end to end: real documents printed with ``lp`` through a queue of a private cupsd
wrapped by ``pageledger-agent install``, arriving at a virtual IPP printer, recorded by the
real server (``live_server``)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from pypdf import PdfReader

from agent.pagecount import count_job
from tests import sample_documents as docs
from tests.conftest import wait_until
from tests.integration.cups_harness import CupsHarness

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.cups


@pytest.fixture(scope="module")
def cups():
    harness = CupsHarness().start()
    yield harness
    harness.stop()


def agent_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


class WrappedQueue:
    def __init__(self, cups: CupsHarness, tmp_path: Path, name: str, raw: bool = False):
        self.cups = cups
        self.name = name
        self.state = tmp_path / "agent-state"
        self.install_dir = tmp_path / "agent-install"
        if raw:
            cups.add_raw_queue(name)
        else:
            cups.add_queue(name)

    def install(self, server_url: str, token: str, *extra: str) -> subprocess.CompletedProcess:
        return agent_cli("install", f"SERVICESURL={server_url}", f"AGENTTOKEN={token}",
                         "SUPPRESSSHORTCUTS=1", f"INSTALLDIR={self.install_dir}", "SERVERTIMEOUT=1", *extra,
                         "--state-dir", str(self.state), "--server-bin", str(self.cups.server_bin),
                         "--cups-server", self.cups.server, "--queues", self.name)

    def uninstall(self, *extra: str) -> subprocess.CompletedProcess:
        return agent_cli("uninstall", "--state-dir", str(self.state), "--cups-server", self.cups.server, *extra)

    def print(self, path: Path, **kwargs) -> tuple[int, dict]:
        job_id = self.cups.submit(self.name, path, **kwargs)
        return job_id, self.cups.wait_job(self.name, job_id)


def recorded_jobs(server, expected: int) -> list[dict]:
    def fetch():
        response = requests.get(server.url + "/api/v1/jobs", headers=server.headers(server.admin_token), timeout=5)
        response.raise_for_status()
        jobs = response.json()["jobs"]
        return jobs if len(jobs) >= expected else None

    return wait_until(fetch, timeout=15)


def printed_pages(path: Path) -> int:
    return len(PdfReader(str(path)).pages)


def test_pdf_ps_and_text_jobs_are_printed_and_recorded_with_copies_duplex_and_n_up(cups, live_server, tmp_path):
    queue = WrappedQueue(cups, tmp_path, "office")
    installed = queue.install(live_server.url, live_server.agent_token)
    assert installed.returncode == 0, installed.stderr
    assert cups.device_uri("office") == f"pageledger:{cups.printer_uri}"
    priced = subprocess.run([sys.executable, "-m", "pageledger.cli", "printers", "set-cost", "office",
                             "--mono", "0.05", "--colour", "0.25"], cwd=live_server.workdir, env=live_server.env,
                            capture_output=True, text=True, timeout=60)
    assert priced.returncode == 0, priced.stderr
    before = len(cups.printed_documents())

    pdf_job, state = queue.print(docs.pdf(tmp_path / "report.pdf", 4, colour_pages=(1,)), title="Quarterly report",
                                 copies=3, options={"sides": "two-sided-long-edge", "media": "iso_a4_210x297mm",
                                                    "print-color-mode": "color"})
    assert state["job-state"] == "completed", (state, cups.error_log()[-3000:])
    ps_job, state = queue.print(docs.postscript(tmp_path / "letter.ps", 3, dsc_pages=3), user="bob",
                                title="Letter", options={"number-up": "2", "media": "iso_a4_210x297mm"})
    assert state["job-state"] == "completed", state
    text_job, state = queue.print(docs.text(tmp_path / "notes.txt", 150), user="carol", title="Notes",
                                  options={"media": "iso_a4_210x297mm", "print-color-mode": "monochrome"})
    assert state["job-state"] == "completed", state

    printed = cups.wait_printed(before + 3)[before:]
    by_user = {cups.printed_attributes(p)["IPP_JOB_ORIGINATING_USER_NAME"]: p for p in printed}
    assert set(by_user) == {"alice", "bob", "carol"}
    alice_attrs = cups.printed_attributes(by_user["alice"])
    assert (alice_attrs["IPP_COPIES"], alice_attrs["IPP_SIDES"]) == ("3", "two-sided-long-edge")

    jobs = {job["user"]: job for job in recorded_jobs(live_server, 3)}
    alice, bob, carol = jobs["alice"], jobs["bob"], jobs["carol"]
    assert (alice["printer"], alice["document"]) == ("office", "Quarterly report")
    # Copies are counted once: 4 impressions a copy, 3 copies, duplex: 2 sheets a copy.
    assert (alice["pages"], alice["copies"], alice["duplex"], alice["sheets"]) == (4, 3, True, 6)
    # One page draws in red: still one colour page after pdftopdf, in colour mode.
    assert alice["colour_pages"] == 1
    assert alice["pages"] == printed_pages(by_user["alice"])
    # 3 PostScript pages, 2-up: CUPS imposed them on 2 sides, counted as 2 impressions, not 3.
    assert (bob["document"], bob["pages"], bob["copies"], bob["sheets"]) == ("Letter", 2, 1, 2)
    assert bob["pages"] == printed_pages(by_user["bob"])
    # 150 lines of text became what texttopdf laid out, and that is what was counted.
    assert carol["pages"] == printed_pages(by_user["carol"]) and carol["pages"] >= 2
    assert carol["sheets"] == carol["pages"]
    # The server priced them at the queue's 0.05 a mono and 0.25 a colour impression, every copy once.
    assert float(alice["cost"]) == pytest.approx((3 * 0.05 + 1 * 0.25) * 3)
    assert float(bob["cost"]) == pytest.approx(2 * 0.05)
    assert float(carol["cost"]) == pytest.approx(carol["pages"] * 0.05)
    log = cups.error_log()
    assert "PageLedger: job" in log and live_server.agent_token not in log


def test_a_job_of_several_documents_is_counted_whole(cups, live_server, tmp_path):
    # cupsd pipes every document's filtered PDF into one backend run: 2 + 3 pages, not the last 3.
    queue = WrappedQueue(cups, tmp_path, "multi")
    assert queue.install(live_server.url, live_server.agent_token).returncode == 0
    _job, state = queue.print(docs.pdf(tmp_path / "a.pdf", 2), user="heidi", title="two documents", copies=2,
                              more_files=(docs.pdf(tmp_path / "b.pdf", 3),))
    assert state["job-state"] == "completed", state
    (job,) = [j for j in recorded_jobs(live_server, 1) if j["user"] == "heidi"]
    assert (job["pages"], job["copies"], job["sheets"]) == (5, 2, 10)


def test_raw_queue_pcl_and_pcl_xl_jobs_are_counted_in_their_own_language(cups, live_server, tmp_path):
    queue = WrappedQueue(cups, tmp_path, "raw-pcl", raw=True)
    assert queue.install(live_server.url, live_server.agent_token).returncode == 0
    pcl = docs.pcl5(tmp_path / "driver.pcl", 5)
    _job, state = queue.print(pcl, user="frank", title="From Windows", copies=2)
    assert state["job-state"] == "completed", (state, cups.error_log()[-3000:])
    ps = docs.pclxl(tmp_path / "raw.pxl", 3)
    _job, state = queue.print(ps, user="grace", title="Raw PCL XL", options={"sides": "two-sided-long-edge"})
    assert state["job-state"] == "completed", state
    # The AppSocket printer got the client's bytes unchanged; CUPS' socket backend sends a raw
    # file once per copy, so the PCL arrived twice: 10 pages on paper, as accounted.
    printed = wait_until(lambda: len(cups.socket_printer.received()) >= 2 and cups.socket_printer.received())
    assert sorted(p.read_bytes() for p in printed) == sorted([pcl.read_bytes() * 2, ps.read_bytes()])
    received_pcl = next(p for p in printed if p.read_bytes().startswith(pcl.read_bytes()))
    assert count_job(str(received_pcl)).pages == 10
    jobs = {job["user"]: job for job in recorded_jobs(live_server, 2)}
    assert (jobs["frank"]["pages"], jobs["frank"]["copies"], jobs["frank"]["sheets"]) == (5, 2, 10)
    assert (jobs["grace"]["pages"], jobs["grace"]["duplex"], jobs["grace"]["sheets"]) == (3, True, 2)


def test_offline_jobs_print_and_are_posted_once_the_server_is_back(cups, live_server, tmp_path):
    queue = WrappedQueue(cups, tmp_path, "offline-print")
    assert queue.install(live_server.url, live_server.agent_token, "IGNOREDISCONNECTED=1").returncode == 0
    live_server.stop()
    before = len(cups.printed_documents())
    _job, state = queue.print(docs.pdf(tmp_path / "d.pdf", 2), user="dave", title="while offline", copies=2)
    assert state["job-state"] == "completed", state
    cups.wait_printed(before + 1)
    status = json.loads(agent_cli("status", "--state-dir", str(queue.state)).stdout)
    assert status["queued"] == 1

    live_server.start()
    # The next job posts the backlog before it prints.
    _job, state = queue.print(docs.pdf(tmp_path / "e.pdf", 1), user="dave", title="back online")
    assert state["job-state"] == "completed", state
    assert json.loads(agent_cli("status", "--state-dir", str(queue.state)).stdout)["queued"] == 0
    assert agent_cli("flush", "--state-dir", str(queue.state)).stdout.startswith("posted 0 jobs")
    jobs = {j["document"]: j for j in recorded_jobs(live_server, 2) if j["user"] == "dave"}
    assert sorted(jobs) == ["back online", "while offline"]
    offline = jobs["while offline"]
    assert (offline["pages"], offline["copies"], offline["sheets"]) == (2, 2, 4)


def test_ignore_disconnected_0_refuses_jobs_until_the_server_was_reached(cups, live_server, tmp_path):
    queue = WrappedQueue(cups, tmp_path, "strict")
    live_server.stop()
    installed = queue.install(live_server.url, live_server.agent_token, "IGNOREDISCONNECTED=0")
    assert installed.returncode == 0 and "server not reachable" in installed.stdout
    before = len(cups.printed_documents())
    job_id, state = queue.print(docs.pdf(tmp_path / "d.pdf", 1), user="erin", title="refused")
    assert state["job-state"] == "canceled", state
    assert "IgnoreDisconnected=0" in cups.error_log()
    assert len(cups.printed_documents()) == before

    live_server.start()
    _job, state = queue.print(docs.pdf(tmp_path / "d.pdf", 1), user="erin", title="accepted")
    assert state["job-state"] == "completed", state
    jobs = [j for j in recorded_jobs(live_server, 1) if j["user"] == "erin"]
    assert [j["document"] for j in jobs] == ["accepted"]


def test_install_repairs_refuses_a_downgrade_and_uninstall_restores_the_device_uri(cups, live_server, tmp_path):
    queue = WrappedQueue(cups, tmp_path, "lifecycle")
    original = cups.device_uri("lifecycle")
    assert queue.install(live_server.url, live_server.agent_token).returncode == 0
    backend = cups.server_bin / "backend" / "pageledger"
    assert backend.stat().st_mode & 0o777 == 0o700
    units = tmp_path / "systemd"
    repaired = queue.install(live_server.url, live_server.agent_token, "--release-service", "--systemd-dir", str(units))
    assert repaired.returncode == 0 and "repairing agent" in repaired.stdout
    # The release service as a systemd unit: written, and (no systemd runs here) the commands to start it.
    unit = (units / "pageledger-release.service").read_text()
    assert (f"ExecStart={queue.install_dir.resolve() / 'pageledger-agent'} release-service --state-dir {queue.state}"
            f" --cups-server {cups.server}\n") in unit
    assert "systemctl daemon-reload && systemctl enable --now pageledger-release.service" in repaired.stdout
    assert "already wrapped" in repaired.stdout
    assert cups.device_uri("lifecycle") == f"pageledger:{original}"  # not wrapped twice
    lpinfo = subprocess.run(["lpinfo", "-h", cups.server, "-v"], capture_output=True, text=True)
    assert "network pageledger" in lpinfo.stdout

    record = queue.state / "installed.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "version": "99.0.0"}))
    refused = queue.install(live_server.url, live_server.agent_token)
    assert refused.returncode == 1 and "newer than this" in refused.stderr
    record.write_text(json.dumps(data))

    bad = queue.install(live_server.url, "not-a-token")
    assert bad.returncode == 1 and "refused the agent token" in bad.stderr and "not-a-token" not in bad.stderr

    removed = queue.uninstall()
    assert removed.returncode == 0, removed.stderr
    assert cups.device_uri("lifecycle") == original
    assert not backend.exists() and not (units / "pageledger-release.service").exists()


def test_install_reads_package_ini_with_the_command_line_winning_and_upgrades_an_older_agent(cups, live_server, tmp_path):
    queue = WrappedQueue(cups, tmp_path, "from-ini")
    ini = tmp_path / "package.ini"
    ini.write_text(f"[Properties]\nServicesUrl={live_server.url}\nAgentToken={live_server.agent_token}\n"
                   f"InstallDir={tmp_path / 'opt'}\nSuppressReboots=1\nSuppressAddRemove=1\n"
                   "SuppressShortcuts=0\nIgnoreDisconnected=1\n")
    bin_dir = tmp_path / "bin"
    result = agent_cli("install", "IGNOREDISCONNECTED=0", "--package-ini", str(ini), "--state-dir", str(queue.state),
                       "--server-bin", str(cups.server_bin), "--cups-server", cups.server, "--queues", "from-ini",
                       "--bin-dir", str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert "server reached: offline policy 'print'" in result.stdout
    status = json.loads(agent_cli("status", "--state-dir", str(queue.state)).stdout)
    assert status["ignore_disconnected"] is False and status["connected_once"] is True
    assert live_server.agent_token not in result.stdout + json.dumps(status)
    shortcut = bin_dir / "pageledger-agent"
    assert shortcut.resolve() == (tmp_path / "opt" / "pageledger-agent")
    launched = subprocess.run([str(shortcut), "status"], capture_output=True, text=True)
    assert launched.returncode == 0 and json.loads(launched.stdout)["version"] == status["version"]

    record = queue.state / "installed.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "version": "0.0.1"}))
    upgraded = agent_cli("install", "--package-ini", str(ini), "--state-dir", str(queue.state),
                         "--server-bin", str(cups.server_bin), "--cups-server", cups.server, "--queues", "from-ini",
                         "--bin-dir", str(bin_dir))
    assert upgraded.returncode == 0 and f"upgrading agent 0.0.1 to {status['version']}" in upgraded.stdout
    assert json.loads(record.read_text())["version"] == status["version"]
    assert queue.uninstall().returncode == 0
    assert not shortcut.exists() and not shortcut.is_symlink()


def test_a_held_job_goes_to_the_server_and_not_to_the_printer(cups, live_server, tmp_path):
    """Secure queue through the real cupsd and the real server: held, uploaded, not printed."""
    made_secure = subprocess.run([sys.executable, "-m", "pageledger.cli", "printers", "secure", "secure", "on"],
                                 cwd=live_server.workdir, env=live_server.env, capture_output=True, text=True)
    assert made_secure.returncode == 0, made_secure.stderr
    queue = WrappedQueue(cups, tmp_path, "secure")
    assert queue.install(live_server.url, live_server.agent_token).returncode == 0
    before = len(cups.printed_documents())
    document = docs.pdf(tmp_path / "payslips.pdf", 3)
    _job, state = queue.print(document, user="ivan", title="payslips")
    assert state["job-state"] == "completed", state
    assert len(cups.printed_documents()) == before  # nothing printed
    (spooled,) = (live_server.workdir / "var" / "spool").glob("*/*")
    assert len(PdfReader(str(spooled)).pages) == 3  # the filtered PDF cupsd handed over
    assert "held for release" in cups.error_log()
    (job,) = [j for j in recorded_jobs(live_server, 1) if j["user"] == "ivan"]
    assert (job["printer"], job["pages"]) == ("secure", 3)

    # A user who types the release service's option is not let past the hold: only a release
    # queue honours pageledger-job, so this job is tracked and held like the first.
    _job, state = queue.print(docs.pdf(tmp_path / "sneaky.pdf", 2), user="mallory", title="sneaky",
                              options={"pageledger-job": "x"})
    assert state["job-state"] == "completed", state
    assert len(cups.printed_documents()) == before  # still nothing printed
    assert "which is no release queue" in cups.error_log()
    (sneaky,) = wait_until(lambda: [j for j in recorded_jobs(live_server, 1) if j["user"] == "mallory"] or None,
                           timeout=15)
    assert (sneaky["printer"], sneaky["pages"]) == ("secure", 2)
