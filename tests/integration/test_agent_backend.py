"""The backend as cupsd runs it (a subprocess, argv and environment of the CUPS contract),
against a real loopback HTTP server speaking the /Services API and a recording "real" backend."""
from __future__ import annotations

import hashlib

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.install import backend_script
from agent.outbox import Outbox
from tests import sample_documents as docs
from tests.conftest import wait_until
from tests.services_double import TOKEN, ServicesDouble


class Rig:
    """A state dir, a ServerBin with the installed wrapper and a recorder backend, a server."""

    def __init__(self, tmp_path: Path, services: ServicesDouble):
        self.tmp = tmp_path
        self.services = services
        self.state = tmp_path / "state"
        self.server_bin = tmp_path / "serverbin"
        self.out = tmp_path / "printed"
        (self.server_bin / "backend").mkdir(parents=True)
        self.out.mkdir()
        self.wrapper = self.server_bin / "backend" / "pageledger"
        self.wrapper.write_text(backend_script(sys.executable, self.state))
        self.wrapper.chmod(0o700)
        recorder = self.server_bin / "backend" / "recorder"
        recorder.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > {self.out}/argv\n"
                            f"echo \"$DEVICE_URI\" > {self.out}/device_uri\ncat > {self.out}/data\nexit 0\n")
        recorder.chmod(0o700)
        self.configure()

    def configure(self, **properties: str) -> None:
        values = {"ServicesUrl": self.services.url, "AgentToken": TOKEN, "IgnoreDisconnected": "1",
                  "ServerTimeout": "0.5", "ClientHost": "printsrv1"}
        values.update(properties)
        AgentConfig(state_dir=self.state).with_properties(values).save()

    def run(self, *args: str, data: bytes | None = None, printer: str = "office",
            final_type: str = "application/pdf") -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "DEVICE_URI": "pageledger:recorder://printer.example/q",
               "CUPS_SERVERBIN": str(self.server_bin), "PRINTER": printer, "TMPDIR": str(self.tmp),
               "FINAL_CONTENT_TYPE": final_type}
        return subprocess.run([str(self.wrapper), *args], input=data, capture_output=True, env=env, timeout=60)

    def printed(self) -> bytes | None:
        path = self.out / "data"
        return path.read_bytes() if path.exists() else None

    def outbox(self) -> list[dict]:
        with Outbox(self.state / "outbox.sqlite3") as outbox:
            return outbox.pending(100)


@pytest.fixture
def services(tmp_path):
    double = ServicesDouble(tmp_path / "spool").start()
    yield double
    double.stop()


@pytest.fixture
def rig(tmp_path, services):
    return Rig(tmp_path, services)


def test_without_arguments_it_prints_the_discovery_line(rig):
    result = rig.run()
    assert result.returncode == 0
    assert result.stdout.decode().strip() == 'network pageledger "Unknown" "PageLedger accounting"'


def test_a_device_uri_that_wraps_nothing_stops_the_queue_without_showing_its_password(rig, tmp_path):
    env = {"PATH": os.environ["PATH"], "DEVICE_URI": "socket://admin:s3cret@printer:9100",
           "CUPS_SERVERBIN": str(rig.server_bin), "PRINTER": "q", "TMPDIR": str(tmp_path)}
    result = subprocess.run([str(rig.wrapper), "1", "alice", "t", "1", ""], input=b"x", capture_output=True, env=env)
    assert result.returncode == 4  # CUPS_BACKEND_STOP
    assert b"is not pageledger:<real device URI>" in result.stderr and b"s3cret" not in result.stderr


def test_a_missing_real_backend_stops_the_queue(rig, tmp_path):
    env = {"PATH": os.environ["PATH"], "DEVICE_URI": "pageledger:nosuch://printer",
           "CUPS_SERVERBIN": str(rig.server_bin), "PRINTER": "q", "TMPDIR": str(tmp_path)}
    result = subprocess.run([str(rig.wrapper), "1", "alice", "t", "1", ""], input=b"x", capture_output=True, env=env)
    assert result.returncode == 4
    assert b"no CUPS backend for 'nosuch'" in result.stderr


def test_bad_arguments_fail_with_usage(rig):
    result = rig.run("1", "alice", "title")
    assert result.returncode == 1
    assert b"Usage: pageledger job-id user title copies options [file]" in result.stderr


def test_a_tracked_job_is_handed_to_the_real_backend_with_its_data(rig, services, tmp_path):
    data = docs.pdf(tmp_path / "doc.pdf", 4, colour_pages=(0,)).read_bytes()
    result = rig.run("42", "alice", "Quarterly report", "3", "job-uuid=urn:uuid:42 sides=two-sided-long-edge", data=data)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert rig.printed() == data
    # (argv[0] is not observable from a script: the kernel replaces it with the script's path)
    argv = (rig.out / "argv").read_text().splitlines()
    assert argv[1:] == ["42", "alice", "Quarterly report", "3", "job-uuid=urn:uuid:42 sides=two-sided-long-edge"]
    assert (rig.out / "device_uri").read_text().strip() == "recorder://printer.example/q"
    job = services.jobs["printsrv1/42/urn:uuid:42"]
    assert (job["user"], job["printer"], job["document"]) == ("alice", "office", "Quarterly report")
    assert (job["pages"], job["copies"], job["duplex"], job["colour_pages"], job["paper"], job["pdl"]) == \
        (4, 3, True, 1, "A4", "pdf")
    assert job["size"] == len(data)
    assert "INFO: PageLedger: job 42 by alice: pdf, 4 pages x 3 copies, 6 sheets duplex" in stderr
    assert TOKEN not in stderr
    assert rig.outbox() == []
    # The temporary copy of stdin is gone.
    assert not list(tmp_path.glob("pageledger-*.spool"))


def test_raw_queue_file_argument_is_counted_with_number_up_and_passed_on(rig, services, tmp_path):
    spool = docs.pcl5(tmp_path / "d00007-001", 5)
    result = rig.run("7", "bob", "raw job", "1", "number-up=2", str(spool), final_type="")
    assert result.returncode == 0, result.stderr.decode()
    job = services.jobs["printsrv1/7/" + [k for k in services.jobs][0].split("/")[2]]
    assert (job["pdl"], job["pages"], job["copies"]) == ("pcl5", 3, 1)
    assert (rig.out / "argv").read_text().splitlines()[-1] == str(spool)


def test_malformed_layout_options_are_ignored_with_a_warning(rig, services, tmp_path):
    spool = docs.pcl5(tmp_path / "d00008-001", 4)
    result = rig.run("8", "bob", "raw job", "1", "number-up=lots page-ranges=x-y", str(spool), final_type="")
    assert result.returncode == 0, result.stderr.decode()
    assert b"WARNING: PageLedger: ignoring number-up must be a whole number" in result.stderr
    assert b"WARNING: PageLedger: ignoring bad page-ranges" in result.stderr
    (job,) = services.jobs.values()
    assert job["pages"] == 4


def test_raw_queue_page_ranges_are_applied_to_the_clients_document(rig, services, tmp_path):
    spool = docs.pcl5(tmp_path / "d00009-001", 6)
    result = rig.run("9", "bob", "raw job", "2", "page-ranges=2-4", str(spool), final_type="")
    assert result.returncode == 0, result.stderr.decode()
    (job,) = services.jobs.values()
    assert (job["pages"], job["copies"]) == (3, 2)


def test_denied_job_is_cancelled_with_the_servers_message(rig, services, tmp_path):
    services.decisions["office"] = ("deny", "quota exceeded for alice")
    result = rig.run("43", "alice", "big", "1", "", data=docs.pdf(tmp_path / "d.pdf", 2).read_bytes())
    assert result.returncode == 5
    assert b"ERROR: PageLedger: job denied: quota exceeded for alice" in result.stderr
    assert rig.printed() is None


def test_held_job_uploads_its_data_and_does_not_print(rig, services, tmp_path):
    services.decisions["secure"] = ("hold", "release at the printer")
    data = docs.pdf(tmp_path / "d.pdf", 3).read_bytes()
    result = rig.run("44", "alice", "payslips", "1", "job-uuid=urn:uuid:44", data=data, printer="secure")
    assert result.returncode == 0, result.stderr.decode()
    assert rig.printed() is None
    (upload,) = services.uploads.values()
    assert upload["path"].read_bytes() == data
    assert upload["sha256"] == hashlib.sha256(data).hexdigest() and upload["content_length"] == str(len(data))
    assert b"held for release" in result.stderr


def test_a_cups_retry_of_a_held_job_is_still_held_when_duplicates_are_answered_print(rig, services, tmp_path):
    services.decisions["secure"] = ("hold", "")
    services.duplicate_decision = "print"  # what the foundation server answers for any duplicate
    services.spool_fail_with = 503
    data = docs.pdf(tmp_path / "d.pdf", 2).read_bytes()
    argv = ("46", "alice", "payslips", "1", "job-uuid=urn:uuid:46")
    first = rig.run(*argv, data=data, printer="secure")
    assert first.returncode == 6 and b"will retry" in first.stderr  # CUPS_BACKEND_RETRY
    services.spool_fail_with = None
    retry = rig.run(*argv, data=data, printer="secure")
    assert retry.returncode == 0, retry.stderr.decode()
    assert rig.printed() is None
    (upload,) = services.uploads.values()
    assert upload["path"].read_bytes() == data
    assert len(services.jobs) == 1


def test_held_job_without_a_spool_endpoint_fails_and_is_not_printed(rig, services, tmp_path):
    services.decisions["secure"] = ("hold", "")
    services.spool_supported = False
    result = rig.run("45", "alice", "x", "1", "", data=docs.pdf(tmp_path / "d.pdf", 1).read_bytes(), printer="secure")
    assert result.returncode == 1
    assert b"cannot take its data" in result.stderr and rig.printed() is None


def test_offline_with_ignore_disconnected_prints_and_posts_later_exactly_once(rig, services, tmp_path):
    data = docs.pdf(tmp_path / "d.pdf", 2).read_bytes()
    services.fail_with = 503
    result = rig.run("50", "alice", "offline", "2", "job-uuid=urn:uuid:50", data=data)
    assert result.returncode == 0, result.stderr.decode()
    assert rig.printed() == data
    assert b"STATE: +com.pageledger-server-unreachable-warning" in result.stderr
    assert [j["job_key"] for j in rig.outbox()] == ["printsrv1/50/urn:uuid:50"]
    services.fail_with = None
    result = rig.run("51", "alice", "online", "1", "job-uuid=urn:uuid:51", data=data)
    assert result.returncode == 0, result.stderr.decode()
    assert b"posted 1 queued jobs" in result.stderr
    assert sorted(services.jobs) == ["printsrv1/50/urn:uuid:50", "printsrv1/51/urn:uuid:51"]
    assert services.jobs["printsrv1/50/urn:uuid:50"]["copies"] == 2
    assert rig.outbox() == []


def test_never_connected_and_ignore_disconnected_0_refuses_the_job(rig, services, tmp_path):
    rig.configure(IgnoreDisconnected="0", ServicesUrl="http://127.0.0.1:9")
    result = rig.run("60", "alice", "x", "1", "", data=docs.pdf(tmp_path / "d.pdf", 1).read_bytes())
    assert result.returncode == 5
    assert b"never reached the PageLedger server and IgnoreDisconnected=0" in result.stderr
    assert rig.printed() is None and rig.outbox() == []


def test_after_connecting_the_servers_cached_refuse_policy_applies(rig, services, tmp_path):
    services.offline_policy = "refuse"
    data = docs.pdf(tmp_path / "d.pdf", 1).read_bytes()
    assert rig.run("61", "alice", "x", "1", "", data=data).returncode == 0
    assert json.loads((rig.state / "policy.json").read_text())["offline"] == "refuse"
    services.fail_with = 502
    result = rig.run("62", "alice", "y", "1", "", data=data)
    assert result.returncode == 5
    assert b"the server's policy refuses jobs while it cannot be reached" in result.stderr


def test_a_server_time_out_keeps_the_job_and_the_repost_is_a_duplicate(rig, services, tmp_path):
    services.delay = 1.0  # longer than ServerTimeout=0.5: the server records it, the agent never hears
    data = docs.pdf(tmp_path / "d.pdf", 1).read_bytes()
    result = rig.run("70", "alice", "slow", "1", "job-uuid=urn:uuid:70", data=data)
    assert result.returncode == 0 and rig.printed() == data
    assert b"server unreachable" in result.stderr
    wait_until(lambda: len(services.posts) == 1)  # the server did record it, late
    services.delay = 0
    flush = subprocess.run([sys.executable, "-m", "agent.cli", "flush", "--state-dir", str(rig.state)],
                           capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert flush.returncode == 0, flush.stderr
    assert "posted 1 jobs" in flush.stdout
    assert list(services.jobs) == ["printsrv1/70/urn:uuid:70"]
    assert len(services.posts) == 2  # posted twice, recorded once
    assert rig.outbox() == []


def test_unknown_format_is_recorded_as_unknown_with_zero_pages_and_printed(rig, services):
    blob = b"\x00\x01binary blob" * 10
    result = rig.run("80", "alice", "x", "1", "", data=blob)
    assert result.returncode == 0
    assert b"unknown document format (130 bytes)" in result.stderr
    (job,) = services.jobs.values()
    assert (job["pdl"], job["pages"], job["size"]) == ("unknown", 0, 130)
    assert rig.printed() == blob


def test_a_job_the_server_rejects_is_kept_aside_and_printed(rig, services, tmp_path):
    services.reject_printers.add("office")
    data = docs.pdf(tmp_path / "d.pdf", 1).read_bytes()
    result = rig.run("81", "alice", "x", "1", "job-uuid=urn:uuid:81", data=data)
    assert result.returncode == 0
    assert b"the server rejected the job record" in result.stderr
    assert rig.printed() == data and rig.outbox() == []
    with Outbox(rig.state / "outbox.sqlite3") as outbox:
        ((key, reason),) = outbox.rejected()
    assert key == "printsrv1/81/urn:uuid:81" and "jobs.0.printer" in reason


def test_a_refused_token_is_reported_and_the_job_kept(rig, services, tmp_path):
    services.token = "another-token"
    data = docs.pdf(tmp_path / "d.pdf", 1).read_bytes()
    result = rig.run("90", "alice", "x", "1", "", data=data)
    assert result.returncode == 0
    assert b"refused the agent token" in result.stderr
    assert len(rig.outbox()) == 1
    assert TOKEN.encode() not in result.stderr


def test_concurrent_offline_jobs_are_all_posted_once_when_the_server_returns(rig, services, tmp_path):
    data = docs.pdf(tmp_path / "d.pdf", 1).read_bytes()
    services.fail_with = 503
    env_runs = [subprocess.Popen([str(rig.wrapper), str(100 + i), "alice", f"job {i}", "1", f"job-uuid=urn:uuid:{i}"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env={"PATH": os.environ["PATH"], "DEVICE_URI": "pageledger:recorder://p/q",
                                      "CUPS_SERVERBIN": str(rig.server_bin), "PRINTER": "office",
                                      "TMPDIR": str(tmp_path), "FINAL_CONTENT_TYPE": "application/pdf"})
                for i in range(6)]
    for proc in env_runs:
        proc.communicate(data, timeout=60)
        assert proc.returncode == 0
    assert len(rig.outbox()) == 6
    services.fail_with = None
    # Two flushers at once: one posts, the other finds the lock taken; nothing is posted twice.
    flushes = [subprocess.Popen([sys.executable, "-m", "agent.cli", "flush", "--state-dir", str(rig.state)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[2]) for _ in range(2)]
    outputs = [f.communicate(timeout=60)[0] for f in flushes]
    assert all(f.returncode == 0 for f in flushes), outputs
    assert rig.outbox() == []
    assert sorted(services.jobs) == sorted(f"printsrv1/{100 + i}/urn:uuid:{i}" for i in range(6))
    assert sum(len(batch) for batch in services.posts) == 6


def test_a_backlogged_job_the_server_recorded_with_other_figures_is_dropped_with_a_warning_and_never_reposted(
        rig, services, tmp_path):
    recorded = {"job_key": "printsrv1/7/urn:uuid:7", "user": "alice", "printer": "office", "client_host": "printsrv1",
                "document": "old", "submitted_at": "2026-11-25T09:00:00+00:00", "pages": 3, "copies": 1,
                "colour_pages": 0, "duplex": False, "paper": "A4", "size": 10, "pdl": "pdf"}
    services.jobs[recorded["job_key"]] = recorded
    with Outbox(rig.state / "outbox.sqlite3") as outbox:
        outbox.add(dict(recorded, pages=4, copies=2))
    data = docs.pdf(tmp_path / "d.pdf", 1).read_bytes()
    result = rig.run("8", "alice", "now", "1", "job-uuid=urn:uuid:8", data=data)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert rig.printed() == data
    assert ("WARNING: PageLedger: the server already recorded job printsrv1/7/urn:uuid:7 with other figures "
            "(pages, copies)") in stderr and "not re-posted" in stderr
    assert rig.outbox() == []
    posts_before = len(services.posts)
    assert rig.run("9", "alice", "later", "1", "job-uuid=urn:uuid:9", data=data).returncode == 0
    assert [[j["job_key"] for j in batch] for batch in services.posts[posts_before:]] == [["printsrv1/9/urn:uuid:9"]]
    assert services.jobs["printsrv1/7/urn:uuid:7"]["pages"] == 3  # as first recorded


def test_a_cups_retry_of_a_held_job_with_other_figures_stays_held(rig, services, tmp_path):
    services.decisions["secure"] = ("hold", "")
    services.duplicate_decision = "print"  # the server's decision must not turn a held job into a printed one
    argv = ("47", "alice", "payslips", "1", "job-uuid=urn:uuid:47 time-at-creation=1764061200")
    first = rig.run(*argv, data=docs.pdf(tmp_path / "d.pdf", 2).read_bytes(), printer="secure")
    assert first.returncode == 0, first.stderr.decode()
    retry = rig.run(*argv, data=docs.pdf(tmp_path / "e.pdf", 3).read_bytes(), printer="secure")
    assert retry.returncode == 0, retry.stderr.decode()
    assert b"with other figures (pages, size)" in retry.stderr
    assert rig.printed() is None and rig.outbox() == []


def test_held_data_the_server_refuses_cancels_the_job_instead_of_retrying_it_forever(rig, services, tmp_path):
    services.decisions["secure"] = ("hold", "")
    services.spool_fail_with = 400  # e.g. the job is held already, with other data
    result = rig.run("48", "alice", "x", "1", "job-uuid=urn:uuid:48", data=docs.pdf(tmp_path / "d.pdf", 1).read_bytes(),
                     printer="secure")
    assert result.returncode == 5, result.stderr.decode()  # CUPS_BACKEND_CANCEL, not 6 (retry)
    assert b"already held with other data" in result.stderr and b"not retried" in result.stderr
    assert rig.printed() is None


def test_held_data_too_large_for_the_server_cancels_the_job_with_a_reason(rig, services, tmp_path):
    services.decisions["secure"] = ("hold", "")
    services.spool_fail_with = 413
    result = rig.run("49", "alice", "x", "1", "job-uuid=urn:uuid:49", data=docs.pdf(tmp_path / "d.pdf", 1).read_bytes(),
                     printer="secure")
    assert result.returncode == 5, result.stderr.decode()  # CUPS_BACKEND_CANCEL: it would never fit
    assert b"too large for the server to hold" in result.stderr and b"max_spool_mib" in result.stderr
    assert rig.printed() is None


def test_held_data_the_server_received_cut_short_is_retried(rig, services, tmp_path):
    services.decisions["secure"] = ("hold", "")
    services.spool_fail_with = 400
    services.spool_fail_errors = {"Content-Length": ["declared 4096 bytes, received 1024: the upload was cut short"]}
    data = docs.pdf(tmp_path / "d.pdf", 1).read_bytes()
    argv = ("51", "alice", "x", "1", "job-uuid=urn:uuid:51")
    first = rig.run(*argv, data=data, printer="secure")
    assert first.returncode == 6, first.stderr.decode()  # CUPS_BACKEND_RETRY, not cancel
    assert b"damaged or cut short" in first.stderr and b"will retry" in first.stderr
    services.spool_fail_with = None
    retry = rig.run(*argv, data=data, printer="secure")
    assert retry.returncode == 0, retry.stderr.decode()
    assert rig.printed() is None and services.uploads


def test_the_printing_application_is_sent_with_the_job_when_the_job_tells_it(rig, services, tmp_path):
    """A PDF made by Ghostscript from a LibreOffice PostScript file names LibreOffice (its /Creator);
    the macOS print dialog's option names the application before the document does; a PCL job
    tells none, and its record carries no application at all (what an older agent sends)."""
    import shutil

    assert shutil.which("gs"), "ghostscript (gs) is needed"
    ps = tmp_path / "office.ps"
    ps.write_text("%!PS-Adobe-3.0\n%%Creator: (LibreOffice 7.5.3.2)\n%%Pages: 1\n%%EndComments\n"
                  "/Helvetica findfont 12 scalefont setfont 72 720 moveto (hi) show showpage\n")
    pdf = tmp_path / "office.pdf"
    subprocess.run(["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite", f"-sOutputFile={pdf}", str(ps)],
                   check=True, timeout=60)
    result = rig.run("51", "alice", "Minutes", "1", "job-uuid=urn:uuid:51", data=pdf.read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    assert services.jobs["printsrv1/51/urn:uuid:51"]["application"] == "LibreOffice"
    assert "application LibreOffice" in result.stderr.decode()
    result = rig.run("52", "alice", "Minutes", "1",
                     "job-uuid=urn:uuid:52 com.apple.print.JobInfo.PMApplicationName=Pages", data=pdf.read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    assert services.jobs["printsrv1/52/urn:uuid:52"]["application"] == "Pages"
    spool = docs.pcl5(tmp_path / "d00053-001", 2)
    result = rig.run("53", "bob", "raw job", "1", "job-uuid=urn:uuid:53", str(spool), final_type="")
    assert result.returncode == 0, result.stderr.decode()
    assert "application" not in services.jobs["printsrv1/53/urn:uuid:53"]
    assert "application unknown" in result.stderr.decode()
