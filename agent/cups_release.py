"""The release service's CUPS: printer state, one raw Print-Job per release, the job's state.

CUPS's own command-line clients do the IPP: ``lp`` submits (``-o raw``, so the held bytes go
to the printer unfiltered as ``application/vnd.cups-raw``), ``ipptool`` reads printer and job
attributes. They come with cups-client and cups-ipp-utils, which a print server has anyway;
pycups would need libcups2-dev and a compiler on every print server (or Debian's python3-cups,
which only exists for the system Python), for the same three IPP operations. Each call is a
short-lived process (~7 ms for ``lp`` here), far below the printer's own time.

A CUPS job is named by (server, queue, job-id, time-at-creation): job ids restart at 1 when
cupsd's job cache is wiped, so an id alone could name another job.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.secure_queues import RELEASE_JOB_OPTION, is_release_queue

PRINTER_STATES = {"3": "idle", "4": "processing", "5": "stopped"}
JOB_STATES = {"3": "pending", "4": "pending-held", "5": "processing", "6": "processing-stopped",
              "7": "canceled", "8": "aborted", "9": "completed"}
FINAL_JOB_STATES = ("completed", "canceled", "aborted")

_PRINTER_TEST = """{
  NAME "printer state"
  OPERATION Get-Printer-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR keyword requested-attributes printer-state,printer-state-reasons,printer-state-message,printer-is-accepting-jobs
  DISPLAY printer-state
  DISPLAY printer-state-reasons
  DISPLAY printer-state-message
  DISPLAY printer-is-accepting-jobs
}
"""
_JOB_TEST = """{
  NAME "job state"
  OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $job_id
  ATTR name requesting-user-name root
  ATTR keyword requested-attributes job-state,job-state-reasons,time-at-creation,job-printer-state-message
  DISPLAY job-state
  DISPLAY job-state-reasons
  DISPLAY time-at-creation
  DISPLAY job-printer-state-message
}
"""
_PRINTERS_TEST = """{
  NAME "printers"
  OPERATION CUPS-Get-Printers
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR keyword requested-attributes printer-name,printer-state,printer-state-reasons,printer-state-message,printer-is-accepting-jobs
  DISPLAY printer-name
}
"""
_SEPARATOR = "-- separator --"
_LINE = re.compile(r"^\s*([a-z-]+) \([^)]*\) = (.*)$", re.M)


class CupsUnavailable(Exception):
    """cupsd did not answer (not running, refused the connection)."""


@dataclass(frozen=True)
class PrinterState:
    queue: str
    state: str  # idle | processing | stopped | unknown
    reasons: tuple[str, ...]
    message: str
    accepting: bool

    @property
    def in_error(self) -> bool:
        """Stopped, or reporting an error reason (``media-empty-error``); warnings and reports
        (``toner-low-warning``) are not errors. The server's domain.printers.is_error_state agrees."""
        return self.state == "stopped" or any(r.endswith("-error") for r in self.reasons)

    @property
    def why_not_ready(self) -> str:
        """"" when a job can be released to it, else why not, in words for its user."""
        errors = [r for r in self.reasons if r.endswith("-error") or r in ("paused",)]
        if self.state == "stopped" or errors or not self.accepting:
            parts = [f"printer {self.queue} is {self.state if self.state == 'stopped' else 'not ready'}"]
            shown = [r.removesuffix("-error") for r in self.reasons if r != "none"]
            if shown:
                parts.append(", ".join(shown))
            if self.message:
                parts.append(self.message)
            if not self.accepting:
                parts.append("not accepting jobs")
            return ": ".join(parts[:1]) + (" (" + "; ".join(parts[1:]) + ")" if parts[1:] else "")
        return ""


@dataclass(frozen=True)
class CupsJobRef:
    """A job on one cupsd, named so that a wiped job cache cannot confuse it with another."""

    server: str
    queue: str
    job_id: int
    created_at: int  # time-at-creation, seconds since the epoch (cupsd's clock)

    def __str__(self) -> str:
        return f"{self.server}/{self.queue}/{self.job_id}@{self.created_at}"


@dataclass(frozen=True)
class JobState:
    state: str  # JOB_STATES values, or "gone" (no such job, or another job with that id)
    reasons: str = ""
    message: str = ""


class CupsRelease:
    """One cupsd (``server`` = host:port, "" for the local default)."""

    def __init__(self, server: str = "", work_dir: Path | None = None, timeout: float = 30.0) -> None:
        self.server = server
        self.work_dir = Path(work_dir or tempfile.gettempdir())
        self.timeout = timeout
        self._tests: dict[str, Path] = {}

    @property
    def server_name(self) -> str:
        return self.server or "localhost"

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout,
                                  env={**os.environ, "LC_ALL": "C", "LANG": "C"})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CupsUnavailable(f"{argv[0]}: {exc}") from None

    def _uri(self, queue: str) -> str:
        return f"ipp://{self.server or 'localhost'}/printers/{queue}"

    def _test(self, name: str, text: str) -> Path:
        path = self._tests.get(name)
        if path is None or not path.exists():
            self.work_dir.mkdir(parents=True, exist_ok=True)
            path = self.work_dir / f"{name}.test"
            path.write_text(text)
            self._tests[name] = path
        return path

    def release_queues(self) -> list[str]:
        """The release queues (``<queue>-release``) this cupsd has, sorted: what the release
        service serves. CupsUnavailable when cupsd does not answer."""
        argv = ["lpstat"] + (["-h", self.server] if self.server else []) + ["-v"]
        result = self._run(argv)
        if result.returncode != 0:
            if "No destinations added" in result.stdout + result.stderr:
                return []
            raise CupsUnavailable(f"lpstat -v: {(result.stderr or result.stdout).strip()[:300]}")
        names = (line[len("device for "):].split(":", 1)[0] for line in result.stdout.splitlines()
                 if line.startswith("device for "))
        return sorted(name for name in names if is_release_queue(name))

    def printer_state(self, queue: str) -> PrinterState:
        result = self._run(["ipptool", "-t", self._uri(queue), str(self._test("printer", _PRINTER_TEST))])
        found = dict(_LINE.findall(result.stdout))
        if "printer-state" not in found:
            text = (result.stdout + result.stderr).strip().splitlines()
            if any("not-found" in line or "client-error-not-found" in line for line in text):
                return PrinterState(queue, "missing", ("queue-missing",), "no such release queue", False)
            raise CupsUnavailable(f"printer {queue}: {' '.join(text[-2:]) or 'no answer'}")
        return PrinterState(queue, PRINTER_STATES.get(found["printer-state"].strip(), found["printer-state"].strip()),
                            tuple(r.strip() for r in found.get("printer-state-reasons", "none").split(",")),
                            found.get("printer-state-message", "").strip(),
                            found.get("printer-is-accepting-jobs", "true").strip() == "true")

    def printer_states(self) -> list[PrinterState]:
        """Every printer of this cupsd with its state, in one CUPS-Get-Printers (ipptool's
        verbose output separates the printers; its plain output does not)."""
        result = self._run(["ipptool", "-tv", f"ipp://{self.server or 'localhost'}/",
                            str(self._test("printers", _PRINTERS_TEST))])
        text = result.stdout
        status = re.search(r"^\s*status-code = (\S+)", text, re.M)
        if status is None or not status.group(1).startswith("successful-ok"):
            if status is not None and "not-found" in status.group(1):
                return []  # no printers at all
            raise CupsUnavailable(f"CUPS-Get-Printers: {(result.stderr or text).strip()[-300:] or 'no answer'}")
        states = []
        for block in text[status.end():].split(_SEPARATOR):
            found = {k: _unescaped(v) for k, v in _LINE.findall(block)}
            name = found.get("printer-name", "").strip()
            if not name:
                continue
            state = found.get("printer-state", "").strip()
            states.append(PrinterState(name, PRINTER_STATES.get(state, state or "unknown"),
                                       tuple(r.strip() for r in found.get("printer-state-reasons", "none").split(",")
                                             if r.strip()),
                                       found.get("printer-state-message", "").strip(),
                                       found.get("printer-is-accepting-jobs", "true").strip() == "true"))
        return sorted(states, key=lambda p: p.queue)

    def submit(self, queue: str, path: Path, *, user: str, title: str, pageledger_job: str) -> CupsJobRef:
        """One raw Print-Job of the file as `user`, titled `title`, carrying the PageLedger job id."""
        argv = ["lp"] + (["-h", self.server] if self.server else []) + [
            "-d", queue, "-U", user, "-t", title or "(untitled)", "-o", "raw",
            "-o", f"{RELEASE_JOB_OPTION}={pageledger_job}", "--", str(path)]
        result = self._run(argv)
        match = re.search(r"request id is \S+-(\d+)", result.stdout)
        if result.returncode != 0 or not match:
            raise CupsRefused((result.stderr or result.stdout).strip()[:300] or f"lp exited {result.returncode}")
        return CupsJobRef(self.server_name, queue, int(match.group(1)), 0)

    def with_creation_time(self, ref: CupsJobRef) -> CupsJobRef:
        """The same job with its time-at-creation, which names it for good (see the module docstring)."""
        created = self._job_attributes(ref.queue, ref.job_id).get("time-at-creation", "0").strip()
        return CupsJobRef(ref.server, ref.queue, ref.job_id, int(created) if created.isdigit() else 0)

    def job_state(self, ref: CupsJobRef) -> JobState:
        found = self._job_attributes(ref.queue, ref.job_id)
        if "job-state" not in found:
            return JobState("gone")
        created = found.get("time-at-creation", "").strip()
        if ref.created_at and created.isdigit() and int(created) != ref.created_at:
            return JobState("gone")  # the id was handed out again after the job cache was wiped
        return JobState(JOB_STATES.get(found["job-state"].strip(), found["job-state"].strip()),
                        found.get("job-state-reasons", "").strip(), found.get("job-printer-state-message", "").strip())

    def _job_attributes(self, queue: str, job_id: int) -> dict[str, str]:
        result = self._run(["ipptool", "-t", "-d", f"job_id={job_id}", self._uri(queue),
                            str(self._test("job", _JOB_TEST))])
        if result.returncode != 0 and "job-state" not in result.stdout:
            if "Unable to connect" in result.stderr or "Connection refused" in result.stderr:
                raise CupsUnavailable(result.stderr.strip()[:300])
        return dict(_LINE.findall(result.stdout))


class CupsRefused(Exception):
    """cupsd refused the Print-Job (queue missing, not accepting, ...): the reason in CUPS's words."""


def _unescaped(value: str) -> str:
    """ipptool's display of a text value: quotes and backslashes come escaped."""
    return re.sub(r"\\(.)", r"\1", value)
