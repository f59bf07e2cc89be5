"""The agent through real CUPS and ippeveprinter: a mono-only simplex printer, interpreter counts
on a raw queue, and the self-contained install (issue 19). Kept small: cupsd tests are slow."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import sample_documents as docs
from tests.integration.cups_harness import CupsHarness
from tests.integration.test_agent_corpus import (A3, A4, RED_LOGO, colour_ps2write, cups_raster, damaged_xref_pdf,
                                                 lying_dsc, ps_program, pxlcolor, rich_black_pdf)
from tests.integration.test_agent_cups import ROOT, WrappedQueue, recorded_jobs

pytestmark = pytest.mark.cups


@pytest.fixture(scope="module")
def cups():
    harness = CupsHarness().start()
    yield harness
    harness.stop()


def test_a_mono_simplex_printer_records_no_colour_and_no_duplex_whatever_the_job_asks(cups, live_server, tmp_path):
    mono_uri = cups.start_mono_printer()
    cups.add_queue("mono", mono_uri)
    colour = WrappedQueue.__new__(WrappedQueue)
    colour.cups, colour.name = cups, "colour-too"
    colour.state, colour.install_dir = tmp_path / "agent-state", tmp_path / "agent-install"
    cups.add_queue("colour-too")
    queue = WrappedQueue.__new__(WrappedQueue)
    queue.cups, queue.name, queue.state, queue.install_dir = cups, "mono", colour.state, colour.install_dir
    assert queue.install(live_server.url, live_server.agent_token).returncode == 0
    assert colour.install(live_server.url, live_server.agent_token).returncode == 0
    document = docs.pdf(tmp_path / "chart.pdf", 4, colour_pages=(0, 2))
    options = {"print-color-mode": "color", "sides": "two-sided-long-edge", "media": "iso_a4_210x297mm"}
    queue.print(document, user="ivan", title="Chart on mono", options=options)
    colour.print(document, user="judy", title="Chart in colour", options=options)
    jobs = {job["user"]: job for job in recorded_jobs(live_server, 2)}
    # The mono device prints no colour page and only one side, whatever the job asked ...
    assert (jobs["ivan"]["pages"], jobs["ivan"]["colour_pages"], jobs["ivan"]["duplex"]) == (4, 0, False)
    assert jobs["ivan"]["sheets"] == 4
    # ... while the colour duplex device prints what was asked.
    assert (jobs["judy"]["pages"], jobs["judy"]["colour_pages"], jobs["judy"]["duplex"]) == (4, 2, True)
    assert "monochrome only, one side only" in cups.error_log()


def test_a_raw_queue_without_ppd_asks_its_ipp_device_once_and_an_unaskable_one_leaves_colour_unknown(
        cups, live_server, tmp_path):
    """Colour data sent raw to a mono IPP printer is not charged as colour: the device was asked
    (IPP Get-Printer-Attributes: color-supported false, one-sided only), once for the queue.
    The same data to an AppSocket printer, which nobody can ask, is recorded as colour not known."""
    mono_uri = cups.start_mono_printer()
    cups.run("lpadmin", "-h", cups.server, "-p", "raw-mono", "-E", "-v", mono_uri, "-m", "raw")
    cups.run("cupsenable", "-h", cups.server, "raw-mono", check=False)
    socket_queue = WrappedQueue(cups, tmp_path, "raw-socket", raw=True)
    mono = WrappedQueue.__new__(WrappedQueue)
    mono.cups, mono.name, mono.state, mono.install_dir = cups, "raw-mono", socket_queue.state, socket_queue.install_dir
    assert mono.install(live_server.url, live_server.agent_token).returncode == 0
    assert socket_queue.install(live_server.url, live_server.agent_token).returncode == 0
    chart = docs.pdf(tmp_path / "chart.pdf", 4, colour_pages=(0, 2))
    # No job options: the printer itself refuses a two-sided job (Validate-Job), and a raw queue
    # prints the data as it is, whose two pages are in colour.
    options: dict[str, str] = {}
    for user in ("nina", "omar"):
        _job, state = mono.print(chart, user=user, title="Chart raw on mono", options=options)
        assert state["job-state"] == "completed", (state, cups.error_log()[-3000:])
    _job, state = socket_queue.print(chart, user="pia", title="Chart raw on a socket", options=options)
    assert state["job-state"] == "completed", (state, cups.error_log()[-3000:])
    jobs = {job["user"]: job for job in recorded_jobs(live_server, 3)}
    for user in ("nina", "omar"):
        assert (jobs[user]["pages"], jobs[user]["colour_pages"], jobs[user]["duplex"], jobs[user]["sheets"]) == (
            4, 0, False, 4)
        assert "colour not known" not in jobs[user].get("uncertain", "")
    assert (jobs["pia"]["pages"], jobs["pia"]["colour_pages"]) == (4, 2)
    assert "colour not known" in jobs["pia"]["uncertain"], jobs["pia"]
    log = cups.error_log()
    assert "device ipp:// asked (IPP Get-Printer-Attributes)" in log
    assert "device ipp:// answered (cached)" in log  # the second job did not ask again
    assert "socket: device cannot be asked: colour not known" in log


def test_raw_queue_postscript_is_counted_by_the_interpreter_with_page_ranges_and_n_up(cups, live_server, tmp_path):
    queue = WrappedQueue(cups, tmp_path, "raw-ps", raw=True)
    assert queue.install(live_server.url, live_server.agent_token).returncode == 0
    # %%Pages: 2 and two %%Page: comments, then three pages appended: 5 pages printed.
    lying = lying_dsc(tmp_path)
    _job, state = queue.print(lying, user="kim", title="Lying DSC", options={"page-ranges": "2-5", "number-up": "2"})
    assert state["job-state"] == "completed", (state, cups.error_log()[-3000:])
    mixed = tmp_path / "mixed.ps"
    mixed.write_text(ps_program([(A4, RED_LOGO), (A3, ""), (A4, "")]))
    _job, state = queue.print(mixed, user="lee", title="Mixed", copies=2)
    assert state["job-state"] == "completed", state
    jobs = {job["user"]: job for job in recorded_jobs(live_server, 2)}
    assert (jobs["kim"]["pages"], jobs["kim"]["sheets"]) == (2, 2)  # pages 2-5 of 5, two a side
    assert (jobs["lee"]["pages"], jobs["lee"]["colour_pages"], jobs["lee"]["paper"], jobs["lee"]["copies"]) == (
        3, 1, "mixed", 2)


def test_the_installed_agent_runs_from_its_install_dir_after_the_source_is_deleted(cups, live_server, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT / "agent", source / "agent", ignore=shutil.ignore_patterns("__pycache__"))
    cups.add_queue("standalone")
    before = cups.device_uri("standalone")
    install_dir, state = tmp_path / "opt-agent", tmp_path / "state"
    env = {**os.environ, "CUPS_SERVER": cups.server, "PYTHONPATH": str(source)}
    installed = subprocess.run([sys.executable, "-m", "agent.cli", "install", f"SERVICESURL={live_server.url}",
                                f"AGENTTOKEN={live_server.agent_token}", "SUPPRESSSHORTCUTS=1",
                                f"INSTALLDIR={install_dir}", "--state-dir", str(state),
                                "--server-bin", str(cups.server_bin), "--queues", "standalone"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    backend = (cups.server_bin / "backend" / "pageledger").read_text()
    assert str(source) not in backend and str(ROOT) not in backend and str(install_dir.resolve()) in backend
    shutil.rmtree(source)  # the checkout that installed it is gone

    queue = WrappedQueue.__new__(WrappedQueue)
    queue.cups, queue.name = cups, "standalone"
    _job, state_ = queue.print(docs.pdf(tmp_path / "after.pdf", 2, colour_pages=(1,)), user="mia", title="After",
                               options={"media": "iso_a4_210x297mm"})
    assert state_["job-state"] == "completed", (state_, cups.error_log()[-3000:])
    [job] = recorded_jobs(live_server, 1)
    assert (job["user"], job["pages"], job["colour_pages"]) == ("mia", 2, 1)

    # Uninstall with no option at all: the launcher knows its state, CUPS_SERVER says which cupsd.
    launcher = install_dir / "pageledger-agent"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PAGELEDGER_AGENT_STATE_DIR")}
    removed = subprocess.run([str(launcher), "uninstall"], env={**env, "CUPS_SERVER": cups.server},
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert cups.device_uri("standalone") == before
    assert not (cups.server_bin / "backend" / "pageledger").exists()
    again = subprocess.run([sys.executable, "-m", "agent.cli", "uninstall", "--server-bin", str(cups.server_bin)],
                           env={**env, "CUPS_SERVER": cups.server}, cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    # Idempotent: nothing left to undo, and it says so.
    assert again.returncode == 0 and "nothing to undo" in again.stdout, again.stderr
    assert cups.device_uri("standalone") == before


def test_corpus_documents_printed_through_cups_are_recorded_exactly(cups, live_server, tmp_path):
    """Documents of the corpus (tests/integration/test_agent_corpus.py) printed through the real
    cupsd on filtered and raw queues, to a colour duplex and a mono simplex printer, with copies,
    duplex, N-up and page ranges: each job's recorded figures are exact."""
    mono_uri = cups.start_mono_printer()
    cups.add_queue("corpus-colour")
    cups.add_queue("corpus-mono", mono_uri)
    cups.add_raw_queue("corpus-raw")
    cups.run("lpadmin", "-h", cups.server, "-p", "corpus-raw-mono", "-E", "-v", mono_uri, "-m", "raw")
    cups.run("cupsenable", "-h", cups.server, "corpus-raw-mono", check=False)
    queues = {}
    for name in ("corpus-colour", "corpus-mono", "corpus-raw", "corpus-raw-mono"):
        queue = WrappedQueue.__new__(WrappedQueue)
        queue.cups, queue.name = cups, name
        queue.state, queue.install_dir = tmp_path / "agent-state", tmp_path / "agent-install"
        queues[name] = queue
    everything = WrappedQueue.__new__(WrappedQueue)
    everything.cups, everything.name = cups, ",".join(queues)
    everything.state, everything.install_dir = tmp_path / "agent-state", tmp_path / "agent-install"
    installed = everything.install(live_server.url, live_server.agent_token)
    assert installed.returncode == 0, installed.stderr

    a4 = {"media": "iso_a4_210x297mm"}
    rich = rich_black_pdf(tmp_path)  # 4 pages: rich black, CMY grey, a red logo, RGB grey
    jobs = [  # (queue, user, document, copies, options, the truth recorded)
        ("corpus-colour", "c1", rich, 2, {**a4, "sides": "two-sided-long-edge", "print-color-mode": "color"},
         dict(pages=4, colour_pages=1, copies=2, duplex=True, sheets=4, paper="A4")),
        # blank, red logo, RGB grey; two a side: the first side has the logo
        ("corpus-colour", "c2", colour_ps2write(tmp_path), 1, {**a4, "number-up": "2"},
         dict(pages=2, colour_pages=1, copies=1, duplex=False, sheets=2, paper="A4")),
        ("corpus-colour", "c3", damaged_xref_pdf(tmp_path), 1, {**a4, "page-ranges": "2-3"},
         dict(pages=2, colour_pages=0, copies=1, duplex=False, sheets=2, paper="A4")),
        ("corpus-mono", "m1", rich, 3, {**a4, "print-color-mode": "color"},
         dict(pages=4, colour_pages=0, copies=3, duplex=False, sheets=12, paper="A4")),
        # raw to an AppSocket printer nobody can ask: the data's colour is sent as uncertain
        ("corpus-raw", "r1", pxlcolor(tmp_path), 2, {},
         dict(pages=2, colour_pages=1, copies=2, duplex=False, sheets=4, paper="A4")),
        ("corpus-raw", "r2", cups_raster(tmp_path), 1, {},
         dict(pages=3, colour_pages=1, copies=1, duplex=False, sheets=3, paper="mixed")),
        ("corpus-raw", "r3", rich, 2, {"page-ranges": "3-4", "number-up": "2"},
         dict(pages=1, colour_pages=1, copies=2, duplex=False, sheets=2, paper="A4")),
        # raw to the mono IPP printer: it was asked, it prints no colour
        ("corpus-raw-mono", "rm1", rich, 2, {},
         dict(pages=4, colour_pages=0, copies=2, duplex=False, sheets=8, paper="A4")),
    ]
    for queue, user, document, copies, options, _truth in jobs:
        _job, state = queues[queue].print(document, user=user, title=f"{user} {document.name}", copies=copies,
                                          options=options)
        assert state["job-state"] == "completed", (user, state, cups.error_log()[-3000:])
    recorded = {job["user"]: job for job in recorded_jobs(live_server, len(jobs))}
    for _queue, user, _document, _copies, _options, truth in jobs:
        assert {key: recorded[user][key] for key in truth} == truth, (user, recorded[user])
        unsure = "colour not known" in recorded[user].get("uncertain", "")
        assert unsure == (user in ("r1", "r2", "r3")), (user, recorded[user])
