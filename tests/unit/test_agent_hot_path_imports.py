"""What a job's process imports: only what the job needs (issue 19). Each import here cost a
backend process milliseconds on every job (python -X importtime)."""
import json
import subprocess
import sys
from pathlib import Path

from agent.config import AgentConfig
from tests import sample_documents as docs
from tests.services_double import TOKEN, ServicesDouble

ROOT = Path(__file__).resolve().parents[2]
NEVER_ON_THE_HOT_PATH = ("agent.install", "urllib.request", "pypdf", "dataclasses", "tempfile", "logging",
                         "subprocess", "hashlib", "configparser")
# What a job the server answers at once (print) over http does not need either.
NOT_FOR_A_PRINTED_JOB = ("http.client", "email.parser", "ssl", "socket", "sqlite3", "typing", "datetime",
                         "configparser", "encodings.idna", "fcntl", "select", "pathlib", "urllib.parse")


def imported_after(code: str, env: dict | None = None) -> set[str]:
    script = f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-IS", "-c", script], capture_output=True, text=True, timeout=60,
                            env=env)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split()[-1000:])


def test_the_backend_imports_nothing_a_pdf_job_does_not_need():
    modules = imported_after("import agent.backend")
    assert not modules & set(NEVER_ON_THE_HOT_PATH + NOT_FOR_A_PRINTED_JOB)


def test_counting_a_pdf_with_colour_imports_neither_pypdf_nor_the_interpreter_runner(tmp_path):
    pdf = docs.pdf(tmp_path / "d.pdf", 3, colour_pages=(1,))
    modules = imported_after(f"from agent.cli import main; main(['count', {str(pdf)!r}, '--copies', '2', '--duplex'])")
    unneeded = set(NEVER_ON_THE_HOT_PATH + ("argparse", "pathlib", "agent.config", "socket", "sqlite3", "typing"))
    assert not modules & unneeded, modules & unneeded


def test_count_reads_its_plain_command_line_as_argparse_would():
    from agent.cli import _parser, _plain_count

    for argv in (["count", "f.pdf"], ["count", "f.pdf", "--copies", "3", "--duplex", "--number-up", "2"],
                 ["count", "f.pdf", "--number-up", "4"]):
        fast, full = _plain_count(argv), _parser().parse_args(argv)
        assert (fast.file, fast.copies, fast.duplex, fast.number_up) == (full.file, full.copies, full.duplex,
                                                                         full.number_up)
    # Anything else is left to argparse, which explains it.
    for argv in (["count"], ["count", "f.pdf", "--copies", "0"], ["count", "f.pdf", "--copies=2"],
                 ["count", "--help"], ["count", "f.pdf", "--bogus"], ["status"]):
        assert _plain_count(argv) is None


def test_a_whole_printed_job_posts_and_prints_without_http_client_sqlite_or_ssl(tmp_path):
    """The job is counted, written to the outbox, posted over http, answered, removed from the
    outbox and handed to the real backend: none of the modules it does not need is imported."""
    services = ServicesDouble(tmp_path / "spool").start()
    try:
        state = tmp_path / "state"
        AgentConfig(state_dir=state).with_properties({"ServicesUrl": services.url, "AgentToken": TOKEN}).save()
        real = tmp_path / "backend" / "sink"
        real.parent.mkdir()
        real.write_text("#!/bin/sh\ncat >/dev/null\n")
        real.chmod(0o755)
        pdf = docs.pdf(tmp_path / "d.pdf", 2, colour_pages=(1,))
        code = (f"import os; os.environ.update(DEVICE_URI='pageledger:sink://p', PRINTER='q', "
                f"CUPS_SERVERBIN={str(tmp_path)!r}, FINAL_CONTENT_TYPE='application/pdf', TMPDIR={str(tmp_path)!r}); "
                f"from agent.backend import Backend, BackendLog; from agent.config import load_config; "
                f"from agent.job_options import CupsJob; "
                f"handed = []; "
                f"b = Backend(load_config({str(state)!r}), BackendLog(sys.stderr), dict(os.environ), "
                f"exec_backend=lambda *a: handed.append(a)); "
                f"fd = os.open({str(pdf)!r}, os.O_RDONLY); "
                f"code = b.run('pageledger:sink://p', CupsJob.from_argv(['7', 'alice', 't', '1', "
                f"'job-uuid=urn:uuid:7 print-color-mode=color']), fd); "
                f"assert code == 0 and handed, (code, handed)")
        modules = imported_after(code)
        assert not modules & set(NEVER_ON_THE_HOT_PATH + NOT_FOR_A_PRINTED_JOB), \
            modules & set(NEVER_ON_THE_HOT_PATH + NOT_FOR_A_PRINTED_JOB)
        (job,) = services.jobs.values()
        assert (job["pages"], job["colour_pages"], job["printer"]) == (2, 1, "q")
        assert not list((state / "outbox.sqlite3.pending").iterdir())  # answered: its file is gone
        assert not (state / "outbox.sqlite3").exists()  # and SQLite was never needed
    finally:
        services.stop()
