"""The CUPS backend contract: count the job, ask the server, then print, hold or refuse it.

A wrapped queue's device URI is ``pageledger:<real uri>``. cupsd runs this backend with
``job-id user title copies options [file]`` (data on stdin when there is no file). The
backend counts the pages, records the job in the durable outbox, posts it to the server
(``POST /Services/jobs``) and acts on the decision:

- print: ``exec`` the real backend (``<ServerBin>/backend/<scheme>``) with ``DEVICE_URI``
  rewritten, on the same data;
- hold (secure queue): upload the data (``PUT /Services/jobs/{id}/spool``) and end OK
  without printing;
- deny: cancel the job with the server's message.

When the server cannot be reached the job stays in the outbox and the offline policy
decides (see ``policy_cache``). Every step is told to the CUPS error log on stderr with
``DEBUG:``/``INFO:``/``WARNING:``/``ERROR:``/``STATE:`` lines; the agent token never is.
"""
from __future__ import annotations

import os
import re
import sys
import time

from agent import __version__
from agent.config import STATE_DIR, STATE_DIR_ENV, AgentConfig, ConfigError, load_config
from agent.job_options import BadJobArguments, CupsJob
from agent.outbox import Outbox
from agent.pagecount import JobCount, count_job, pages_in_ranges
from agent.policy_cache import PolicyStore
from agent.printer_abilities import abilities
from agent.printing_application import printing_application
from agent.secure_queues import RELEASE_JOB_OPTION, SecureQueueStore, is_release_job
from agent.lazy_pattern import LazyPattern
from agent.server import (JobResult, ServerError, ServerRefusedToken, ServerRejectedJobs, ServerUnreachable,
                          ServicesClient, SpoolTooLargeForServer, SpoolUploadDamaged, SpoolUploadUnsupported)

# Exit codes from the CUPS backend manual (backend(7)).
CUPS_BACKEND_OK = 0
CUPS_BACKEND_FAILED = 1
CUPS_BACKEND_AUTH_REQUIRED = 2
CUPS_BACKEND_HOLD = 3
CUPS_BACKEND_STOP = 4
CUPS_BACKEND_CANCEL = 5
CUPS_BACKEND_RETRY = 6
CUPS_BACKEND_RETRY_CURRENT = 7

SCHEME = "pageledger"
DISCOVERY_LINE = f'network {SCHEME} "Unknown" "PageLedger accounting"'
OFFLINE_STATE = "com.pageledger-server-unreachable-warning"
_SCHEME_RE = LazyPattern(r"^[a-z][a-z0-9+.\-]*$")
# Backlog batches posted before a job is printed (bounded so a big backlog cannot delay it).
BACKLOG_BATCHES_PER_JOB = 2
COPY_CHUNK = 1 << 20


class BackendLog:
    """Lines for the CUPS error log; cupsd reads the prefix to pick the log level."""

    def __init__(self, stream):
        self._stream = stream

    def _line(self, prefix: str, message: str) -> None:
        self._stream.write(f"{prefix}: {message}\n")
        self._stream.flush()

    def debug(self, message: str) -> None:
        self._line("DEBUG", message)

    def info(self, message: str) -> None:
        self._line("INFO", message)

    def warning(self, message: str) -> None:
        self._line("WARNING", message)

    def error(self, message: str) -> None:
        self._line("ERROR", message)

    def state(self, change: str) -> None:
        self._line("STATE", change)


def _real_device(device_uri: str) -> tuple[str, str]:
    if not device_uri.startswith(SCHEME + ":"):
        raise ValueError(f"device URI {device_uri!r} does not start with {SCHEME}:")
    real_uri = device_uri[len(SCHEME) + 1:]
    scheme = real_uri.split(":", 1)[0]
    if not _SCHEME_RE.match(scheme) or scheme == SCHEME or ":" not in real_uri:
        raise ValueError(f"device URI {device_uri!r} does not wrap a real device URI")
    return real_uri, scheme


def _uri_for_log(uri: str) -> str:
    """A URI without user:password, as CUPS shows them."""
    return re.sub(r"//[^/@]*@", "//", uri)


def _new_spool_file() -> tuple[int, str]:
    """A new private file in cupsd's TMPDIR (as tempfile.mkstemp makes it, without importing
    tempfile, whose imports cost a backend process more than the job's counting)."""
    directory = os.environ.get("TMPDIR") or "/tmp"
    for attempt in range(100):
        path = os.path.join(directory, f"pageledger-{os.getpid()}-{time.monotonic_ns()}-{attempt}.spool")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no new spool file could be made in {directory}")


def spool_stdin(stdin_fd: int) -> str:
    """Copy the job's data from stdin to a temporary file (in cupsd's TMPDIR) and return it."""
    fd, path = _new_spool_file()
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = os.read(stdin_fd, COPY_CHUNK)
            if not chunk:
                break
            out.write(chunk)
    return path


# What the server refuses in a document title (docs/services-api.md "What a job may hold"):
# control characters but TAB, DEL, C1, and the lone surrogates a title that is not UTF-8 decodes
# to. A title is chosen by whoever prints, so it is cleaned here rather than refused there: a
# refused job would escape accounting.
_UNPRINTABLE_IN_TITLE = LazyPattern("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
MAX_TITLE = 1024


def printable_title(title: str) -> str:
    """The job's title as the server can hold it: unprintable characters replaced, cut to length."""
    return _UNPRINTABLE_IN_TITLE.sub("\ufffd", title)[:MAX_TITLE]


def job_record(job: CupsJob, counts: JobCount, *, printer: str, host: str, submitted_at: str,
               application: str = "") -> dict:
    """The job as ``POST /Services/jobs`` wants it; `application` the printing application
    (agent.printing_application), left out when not known."""
    pages = counts.pages if counts.pages is not None else 0
    paper = counts.paper_size if counts.paper_size != "unknown" else job.paper
    paper_counts: dict[str, list[int]] = {}
    for name, (size_pages, size_colour) in counts.paper_counts.items():
        entry = paper_counts.setdefault(name if name != "unknown" else job.paper, [0, 0])
        entry[0] += size_pages
        entry[1] += size_colour
    record = {
        "job_key": job.job_key(host),
        "user": job.user,
        "printer": printer,
        "client_host": host,
        "document": printable_title(job.title),
        "submitted_at": submitted_at,
        "pages": pages,
        "copies": counts.copies,
        "colour_pages": min(counts.colour_pages, pages),
        "duplex": counts.duplex,
        "paper": paper,
        "size": counts.bytes,
        "pdl": counts.format,
    }
    adds_up = (sum(p for p, _ in paper_counts.values()) == pages
               and sum(c for _, c in paper_counts.values()) == record["colour_pages"])
    if adds_up and (len(paper_counts) > 1 or any(n != paper for n in paper_counts)):
        record["paper_counts"] = {name: {"pages": p, "colour_pages": c} for name, (p, c) in paper_counts.items()}
    if counts.pages is None or not counts.pages_known:
        record["pages_known"] = False
    if not counts.colour_known:
        record["colour_known"] = False
    reason = counts.unknown_reason or counts.error
    if reason and (counts.pages is None or not counts.pages_known or not counts.colour_known):
        record["uncertain"] = printable_title(reason)[:255]
    if job.release_code:
        record["release_code"] = job.release_code
    if application:
        record["application"] = application
    return record


def _drop_privileges_for(backend_path: str, log: BackendLog) -> None:
    """Run the real backend as cupsd would (backend(7)): as root unless it has world read and
    execute permissions, then as lp."""
    if os.geteuid() != 0:
        return
    if os.stat(backend_path).st_mode & 0o005 != 0o005:
        return
    import pwd

    try:
        user = pwd.getpwnam("lp")
    except KeyError:
        log.warning("no 'lp' user: the real backend runs as root")
        return
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


class Backend:
    """One run of the backend for one job; its collaborators come in through the constructor."""

    def __init__(self, config: AgentConfig, log: BackendLog, environ: dict[str, str],
                 client: ServicesClient | None = None,
                 exec_backend=os.execve):
        self.config = config
        self.log = log
        self.environ = environ
        self.client = client or ServicesClient(config.services_url, config.agent_token, config.server_timeout)
        self.exec_backend = exec_backend
        self.policies = PolicyStore(config.state_dir)
        self.secure = SecureQueueStore(config.state_dir)

    def run(self, argv0: str, job: CupsJob, stdin_fd: int = 0) -> int:
        started = time.perf_counter()
        try:
            real_uri, scheme = _real_device(self.environ.get("DEVICE_URI") or argv0)
        except ValueError:
            device_uri = _uri_for_log(self.environ.get("DEVICE_URI") or argv0)
            self.log.error(f"PageLedger: device URI {device_uri!r} is not pageledger:<real device URI>")
            return CUPS_BACKEND_STOP
        server_bin = self.environ.get("CUPS_SERVERBIN") or "/usr/lib/cups"
        real_backend = os.path.join(server_bin, "backend", scheme)
        if not os.access(real_backend, os.X_OK):
            self.log.error(f"PageLedger: no CUPS backend for '{scheme}' at {real_backend}")
            return CUPS_BACKEND_STOP
        printer = self.environ.get("PRINTER", "")
        released = is_release_job(job.options, printer)
        if released:
            return self._print_release(argv0, job, real_uri, real_backend, released)
        if job.options.get(RELEASE_JOB_OPTION):
            self.log.warning(f"PageLedger: job {job.job_id} of {job.user!r} asks to print as a released job on "
                             f"{printer!r}, which is no release queue: tracked like any other job")
        spool_path = job.file
        temp_spool = None
        if spool_path is None:
            temp_spool = spool_path = spool_stdin(stdin_fd)
        try:
            code = self._account(job, printer, spool_path, started, real_uri)
            if code is not None:
                return code
            return self._print(argv0, job, real_uri, real_backend, temp_spool)
        finally:
            if temp_spool and os.path.exists(temp_spool):
                os.unlink(temp_spool)

    def _account(self, job: CupsJob, printer: str, spool_path: str, started: float,
                 real_uri: str | None = None) -> int | None:
        """Count, record and ask the server. None means: go on and print."""
        # On a filtered queue (data on stdin, a final content type) CUPS filters have already
        # applied N-up and page ranges; on a raw queue the data is as the client sent it.
        final_type = self.environ.get("FINAL_CONTENT_TYPE", "")
        imposed = job.file is None or (bool(final_type) and final_type != "application/vnd.cups-raw")
        number_up, page_ranges = self._layout_options(job)
        device = abilities(printer, self.environ.get("PPD"), self.config.state_dir, real_uri)
        # print-color-mode is applied by the filters of a filtered queue; on a raw queue nothing
        # applies it (CUPS even sets it to monochrome by default there) and the printer prints
        # the client's bytes as they are: their colour is what the data says.
        counts = count_job(spool_path, copies=job.copies, duplex=job.duplex, number_up=number_up,
                           imposed=imposed, monochrome=job.monochrome and imposed, page_ranges=page_ranges,
                           timeout=self.config.interpreter_timeout, device_colour=device.colour is not False,
                           device_duplex=device.duplex)
        if device.colour is None and counts.colour_known and counts.colour_pages:
            # Colour in the data, on a device nobody could ask: it may print it in grey.
            counts = counts._replace(colour_known=False, unknown_reason=counts.unknown_reason or (
                f"the data has {counts.colour_pages} colour pages; whether the device prints colour is not "
                f"known ({device.source})"))
        if not device.colour or not device.duplex:
            colour_words = {True: "colour", False: "monochrome only", None: "colour not known"}[device.colour]
            self.log.debug(f"PageLedger: the device prints {colour_words}, "
                           f"{'both sides' if device.duplex else 'one side only'} ({device.source})")
        if counts.pages is not None and not counts.pages_known:
            self.log.warning(f"PageLedger: page count not sure ({counts.unknown_reason}): recorded as such")
        if counts.error:
            self.log.warning(f"PageLedger: could not read the document ({counts.error})")
        if counts.pages is None:
            self.log.warning(f"PageLedger: unknown document format ({counts.bytes} bytes): recorded with 0 pages and pdl 'unknown'")
        submitted_at = job.created_at or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        record = job_record(job, counts, printer=printer, host=self.config.client_host, submitted_at=submitted_at,
                            application=printing_application(job.options, spool_path, counts.format))
        self.log.info(f"PageLedger: job {job.job_id} by {job.user}: {counts.format}, {record['pages']} pages x "
                      f"{counts.copies} copies, {counts.sheets if counts.sheets is not None else '?'} sheets"
                      f"{' duplex' if counts.duplex else ''}, "
                      f"{self._colour_words(record, counts)}"
                      f", {record['paper']}, application {record.get('application') or 'unknown'}")
        self.log.debug(f"PageLedger: counted in {(time.perf_counter() - started) * 1000:.1f} ms; job_key {record['job_key']}")

        with Outbox(os.path.join(self.config.state_dir, "outbox.sqlite3"), warn=self.log.warning) as outbox:
            outbox.add(record)
            try:
                results, rejected = outbox.post_batch(self.client, [record])
            except (ServerUnreachable, ServerRefusedToken) as err:
                return self._offline(outbox, record, err)
            self.log.state(f"-{OFFLINE_STATE}")
            if results:
                results[0] = self._settled_decision(outbox, results[0])
            self._after_contact()
            self._flush_backlog(outbox, record["job_key"])
        if rejected:
            if self.secure.load().is_secure(printer):
                self.log.error("PageLedger: the server rejected the job record (kept in the agent's 'rejected' "
                               "list); a secure queue never prints a job unreleased: cancelled")
                return CUPS_BACKEND_CANCEL
            self.log.error(f"PageLedger: the server rejected the job record (kept in the agent's 'rejected' list); "
                           f"printing under the offline policy")
            action = self.policies.load().offline_action(self.config.ignore_disconnected)
            return None if action == "print" else CUPS_BACKEND_CANCEL
        return self._decide(results[0], spool_path)

    @staticmethod
    def _colour_words(record: dict, counts: JobCount) -> str:
        if counts.colour_known:
            return f"{record['colour_pages']} colour"
        return f"colour not known ({counts.unknown_reason or counts.format + ' does not tell'})"

    def _settled_decision(self, outbox: Outbox, result: JobResult) -> JobResult:
        """The decision for this job across CUPS retries: a duplicate (or a conflict: a re-post
        with other figures) of a job that was held or denied stays held or denied, whatever the
        server answers for it."""
        if result.status in ("duplicate", "conflict"):
            remembered = outbox.remembered_decision(result.job_key)
            if remembered and remembered[0] != result.decision:
                self.log.info(f"PageLedger: retry of a job the server decided '{remembered[0]}' for")
                return result._replace(decision=remembered[0], job_id=remembered[1] or result.job_id)
        elif result.decision in ("hold", "deny"):
            outbox.remember_decision(result.job_key, result.decision, result.job_id)
        return result

    def _layout_options(self, job: CupsJob) -> tuple[int, str]:
        """number-up and page-ranges; a malformed one is ignored (with a warning), not fatal."""
        try:
            number_up = job.number_up
        except BadJobArguments as err:
            self.log.warning(f"PageLedger: ignoring {err}")
            number_up = 1
        page_ranges = job.page_ranges
        try:
            pages_in_ranges(1, page_ranges)
        except ValueError as err:
            self.log.warning(f"PageLedger: ignoring {err}")
            page_ranges = ""
        return number_up, page_ranges

    def _offline(self, outbox: Outbox, record: dict, err: ServerError) -> int | None:
        secure = self.secure.load()
        if secure.is_secure(record["printer"]):
            return self._secure_offline(outbox, record, err, secure.offline)
        action = self.policies.load().offline_action(self.config.ignore_disconnected)
        self.log.state(f"+{OFFLINE_STATE}")
        if isinstance(err, ServerRefusedToken):
            self.log.error(f"PageLedger: the server refused the agent token ({err}); re-install with a valid AGENTTOKEN")
        else:
            self.log.warning(f"PageLedger: server unreachable ({err})")
        if action == "print":
            outbox.queue_pending()
            self.log.info(f"PageLedger: printing offline; job kept in the outbox ({outbox.count()} waiting)")
            return None
        outbox.remove([record["job_key"]])
        if not self.policies.load().connected_once:
            reason = ("the agent has never been let in by the PageLedger server and IgnoreDisconnected=0"
                      if isinstance(err, ServerRefusedToken) else
                      "the agent has never reached the PageLedger server and IgnoreDisconnected=0")
        else:
            reason = "the server's policy refuses jobs while it cannot be reached"
        self.log.error(f"PageLedger: job refused: {reason}")
        return CUPS_BACKEND_CANCEL

    def _secure_offline(self, outbox: Outbox, record: dict, err: ServerError, mode: str) -> int:
        """A secure queue fails closed: its job never prints unreleased (agent.secure_queues)."""
        self.log.state(f"+{OFFLINE_STATE}")
        self.log.warning(f"PageLedger: server unreachable ({err}) and {record['printer']} is a secure queue")
        outbox.remove([record["job_key"]])  # CUPS keeps the job itself: the retry posts it again
        if mode == "refuse":
            self.log.error("PageLedger: job refused: the PageLedger server cannot be reached and this secure queue "
                           "prints only released jobs; print it again later")
            return CUPS_BACKEND_CANCEL
        self.log.info("PageLedger: the PageLedger server cannot be reached: the job waits on this print server "
                      "and is held for release once the server answers (not printed)")
        return CUPS_BACKEND_RETRY

    def _print_release(self, argv0: str, job: CupsJob, real_uri: str, real_backend: str, released: str) -> int:
        """A job the release service submitted (pageledger-job=ID): accounted when it was
        tracked and when it printed, so it goes to the printer untouched, never held again."""
        self.log.info(f"PageLedger: released job {released}: printing, not tracked again")
        return self._print(argv0, job, real_uri, real_backend, None)

    def _after_contact(self) -> None:
        cached = self.policies.record_connection()
        if cached.is_stale():
            try:
                policy = self.client.get_policy()
            except ServerError as err:
                self.log.debug(f"PageLedger: policy not refreshed ({err})")
                return
            self.policies.record_connection(policy["offline"])

    def _flush_backlog(self, outbox: Outbox, current_key: str) -> None:
        if not outbox.has_backlog():
            return
        try:
            report = outbox.flush(self.client, self.config.batch_size, BACKLOG_BATCHES_PER_JOB, exclude=(current_key,))
        except ServerError as err:
            self.log.warning(f"PageLedger: backlog not posted ({err})")
            return
        if report.sent or report.rejected:
            self.log.info(f"PageLedger: posted {report.sent} queued jobs ({report.rejected} rejected, {report.remaining} left)")

    def _decide(self, result: JobResult, spool_path: str) -> int | None:
        if result.decision in ("hold", "print") and result.status in ("tracked", "denied"):
            self.secure.learn(self.environ.get("PRINTER", ""), result.decision == "hold")
        cost = f", cost {result.cost}" if result.cost else ""
        self.log.info(f"PageLedger: server says {result.decision} ({result.status}{cost})"
                      f"{': ' + result.message if result.message else ''}")
        if result.decision == "deny":
            self.log.error(f"PageLedger: job denied: {result.message or 'by the server policy'}")
            return CUPS_BACKEND_CANCEL
        if result.decision == "hold":
            return self._hold(result, spool_path)
        return None

    def _hold(self, result: JobResult, spool_path: str) -> int:
        try:
            self.client.upload_spool(result.job_id, spool_path)
        except SpoolUploadUnsupported as err:
            self.log.error(f"PageLedger: the server holds this job but cannot take its data ({err}); not printed")
            return CUPS_BACKEND_FAILED
        except SpoolTooLargeForServer as err:
            self.log.error(f"PageLedger: the job's data is too large for the server to hold ({err}); "
                           f"not printed, not retried")
            return CUPS_BACKEND_CANCEL
        except SpoolUploadDamaged as err:
            self.log.error(f"PageLedger: the server received the held job's data damaged or cut short ({err}); "
                           f"nothing kept, will retry")
            return CUPS_BACKEND_RETRY
        except ServerRejectedJobs as err:
            # e.g. a re-post (duplicate or conflict) of a job held with other data: the job is
            # held as recorded, and the same upload would be refused on every CUPS retry.
            self.log.error(f"PageLedger: the server refuses this job's data ({err}: {err.reasons()}); "
                           f"not printed, not retried")
            return CUPS_BACKEND_CANCEL
        except ServerError as err:
            self.log.error(f"PageLedger: held job's data not uploaded ({err}); will retry")
            return CUPS_BACKEND_RETRY
        # The last INFO line is the job's state message in CUPS: the user sees how to release it
        # (with a generated release code, the code itself).
        told = f": {result.message}" if result.message else ""
        self.log.info(f"PageLedger: job held for release (server job {result.job_id}){told}; not printed now")
        return CUPS_BACKEND_OK

    def _print(self, argv0: str, job: CupsJob, real_uri: str, real_backend: str, temp_spool: str | None) -> int:
        env = dict(self.environ)
        env["DEVICE_URI"] = real_uri
        args = [argv0[len(SCHEME) + 1:] if argv0.startswith(SCHEME + ":") else _uri_for_log(real_uri),
                str(job.job_id), job.user, job.title, str(job.copies), job.options_text]
        if job.file:
            args.append(job.file)
        if temp_spool:
            fd = os.open(temp_spool, os.O_RDONLY)
            os.dup2(fd, 0)
            os.close(fd)
            os.unlink(temp_spool)
        self.log.debug(f"PageLedger: handing the job to {real_backend} ({_uri_for_log(real_uri)})")
        sys.stderr.flush()
        _drop_privileges_for(real_backend, self.log)
        self.exec_backend(str(real_backend), args, env)
        return CUPS_BACKEND_OK  # only reached when exec_backend is not a real exec


def main(argv: list[str] | None = None, *, state_dir=None) -> int:
    argv = list(sys.argv if argv is None else argv)
    log = BackendLog(sys.stderr)
    if len(argv) == 1:
        print(DISCOVERY_LINE, flush=True)
        return CUPS_BACKEND_OK
    try:
        job = CupsJob.from_argv(argv[1:])
    except BadJobArguments as err:
        print(f"Usage: {SCHEME} job-id user title copies options [file]", file=sys.stderr)
        log.error(f"PageLedger: {err}")
        return CUPS_BACKEND_FAILED
    # A str, not a Path: the backend does not import pathlib (its config's paths are str too).
    state = os.fspath(state_dir) if state_dir else (os.environ.get(STATE_DIR_ENV) or STATE_DIR)
    try:
        config = load_config(state)
    except ConfigError as err:
        log.error(f"PageLedger: {err}")
        return CUPS_BACKEND_STOP
    log.debug(f"PageLedger agent {__version__}: ServicesUrl={config.services_url} state={config.state_dir} "
              f"IgnoreDisconnected={int(config.ignore_disconnected)}")
    backend = Backend(config, log, dict(os.environ))
    try:
        return backend.run(argv[0], job)
    except Exception as err:  # never leave cupsd without a reason in its log
        log.error(f"PageLedger: internal error {type(err).__name__}: {err}")
        return CUPS_BACKEND_FAILED
