"""The release service: prints released jobs through the print server's own CUPS.

It runs next to cupsd (inside ``pageledger up`` on one host; ``pageledger-agent release-service``
as a systemd unit on a separate print server), takes its orders from the server over HTTP with
the agent token (``GET /Services/releases``, long-polled), fetches each job's held bytes
(``GET /Services/jobs/{id}/spool``), and for each order:

1. reads the release queue's printer-state and printer-state-reasons: a stopped printer or one
   in error gets nothing, and the job is reported held again with the reason, for its user;
2. submits one raw Print-Job (``agent.cups_release``) as the job's owner, with its title and
   the ``pageledger-job`` attribute;
3. follows the CUPS job until it is completed (reported ``printed``) or canceled/aborted
   (reported held again, with CUPS's reason).

Delivery is idempotent on the PageLedger job id and its release: a journal (SQLite, in the
state dir) records each delivery before ``lp`` runs and the CUPS job it became after, so a
restarted service, an order seen twice or a report that got lost never submits a job again.
CUPS jobs are matched on (server, queue, job-id, time-at-creation); a job CUPS no longer knows
(its job cache was wiped, ids restarted) is never taken for another one with the same id: it
is reported held again, for its owner to check the tray and release again.

Nothing here waits inside a CUPS backend, and nothing per held job lives in memory: the service
only ever looks at the released jobs the server hands it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from agent.card_readers import BadCardLine, CardFormat, CardReaderConnection, normalise
from agent.config import ConfigError, load_config, state_dir_from_environment
from agent.cups_release import CupsJobRef, CupsRefused, CupsRelease, CupsUnavailable, PrinterState
from agent.secure_queues import release_queue_name
from agent.server import ServerError, ServerRejectedJobs, ServerUnreachable, ServicesClient, _refusal

log = logging.getLogger("pageledger.release_service")

ORDER_WAIT_SECONDS = 1.0  # the server answers at once when there is an order (waits 1 s at most)
POLL_SECONDS = 0.2  # while CUPS jobs are being followed
CHUNK = 1 << 20
RETRY_PAUSES = (0.5, 1, 2, 5, 10, 30)
REPORT_AGAIN_SECONDS = 30.0
READERS_REFRESH_SECONDS = 30.0
QUEUES_REFRESH_SECONDS = 10.0  # a release queue added to CUPS is served within this time
MAX_QUEUES_PER_REQUEST = 64  # the server's bound (api.release.MAX_RELEASE_QUEUES)
QUERY_BYTES = 3000  # gunicorn refuses request lines over 4 KB
PRINTER_POLL_SECONDS = 30.0  # agent.ini PrinterPollSeconds
MAX_PRINTERS_PER_POST = 200  # under the server's bound of 500 (api.services.MAX_PRINTERS_PER_REPORT) and its 1 MB body limit
MAX_REASONS = 32
MAX_MESSAGE = 1000
_KEYWORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class ReleaseClient(ServicesClient):
    """The release service's side of /Services."""

    def orders(self, wait: float, queues: list[str] | None = None) -> list[dict]:
        """The orders for `queues` (release queue names; None: every order), long-polled up to
        `wait` s. Many queues are asked for in groups, each request line short enough for the server."""
        found: list[dict] = []
        for i, group in enumerate(_query_groups(queues) if queues else [""]):
            path = f"/Services/releases?wait={(0 if i or found else wait):g}{group}"
            _status, payload = self._request("GET", path, timeout=wait + 10)
            orders = payload.get("orders")
            if not isinstance(orders, list):
                raise ServerUnreachable("GET /Services/releases: no orders in the answer")
            found.extend(orders)
        return found

    def fetch(self, job_id: str, sha256: str, dest: Path) -> int:
        """The held bytes into `dest`, checked against their SHA-256."""
        import urllib.error
        import urllib.request

        path = f"/Services/jobs/{quote(job_id, safe='')}/spool"
        request = urllib.request.Request(self._base + path, method="GET", headers={
            "Authorization": f"Bearer {self._token}", "User-Agent": "pageledger-release-service"})
        digest, size = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(request, timeout=60) as response, open(dest, "wb") as out:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as err:
            raise _refusal("GET", path, err.code, err.read()) from None
        except OSError as err:
            raise ServerUnreachable(f"GET {path}: {err}") from None
        if sha256 and digest.hexdigest() != sha256:
            raise ServerUnreachable(f"GET {path}: the data received does not hash to {sha256}")
        return size

    def report(self, job_id: str, outcome: str, *, why: str = "", cups_job: str = "") -> None:
        body = json.dumps({"outcome": outcome, "why": why, "cups_job": cups_job}).encode()
        self._request("POST", f"/Services/jobs/{quote(job_id, safe='')}/release-outcome", body,
                      {"Content-Type": "application/json"})


    def printer_states(self, printers: list[dict]) -> list[dict]:
        """Printers whose state changed (POST /Services/printer-states); the server's results."""
        body = json.dumps({"printers": printers}).encode()
        _status, payload = self._request("POST", "/Services/printer-states", body, {"Content-Type": "application/json"})
        results = payload.get("results")
        return results if isinstance(results, list) else []

    def card_readers(self) -> list[dict]:
        _status, payload = self._request("GET", "/Services/card-readers")
        readers = payload.get("readers")
        return [r for r in readers if isinstance(r, dict)] if isinstance(readers, list) else []

    def swipe(self, printer: str, card: str, problem: str = "") -> dict:
        body = json.dumps({"printer": printer, "card": card, "problem": problem}).encode()
        _status, payload = self._request("POST", "/Services/card-swipes", body, {"Content-Type": "application/json"})
        return payload


def _query_groups(queues: list[str]) -> list[str]:
    """``&queue=...`` query strings of at most MAX_QUEUES_PER_REQUEST queues and QUERY_BYTES each."""
    groups, current, count = [], "", 0
    for queue in queues:
        part = f"&queue={quote(queue, safe='')}"
        if current and (count == MAX_QUEUES_PER_REQUEST or len(current) + len(part) > QUERY_BYTES):
            groups.append(current)
            current, count = "", 0
        current, count = current + part, count + 1
    return groups + [current] if current else groups


class PrinterWatch:
    """Printers in error, for the server's workflow report: CUPS is asked for every printer's
    state every PrinterPollSeconds (one CUPS-Get-Printers), and only changes are posted (into
    error, out of it, or other reasons or message while in error; idle <-> processing is no
    change). The first poll after a start posts every printer, since what changed while the
    service was down is not known; the server records only what is news to it. A change that
    could not be posted is sent again at the next poll, with the time it was first seen."""

    def __init__(self, client: ReleaseClient, cups: CupsRelease,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.cups = cups
        self.wall_clock = wall_clock
        self.posted: dict[str, tuple] = {}  # queue -> its state as the server has it
        self.pending: dict[str, tuple[tuple, dict]] = {}  # queue -> (state, what to post)
        self._cups_down = False

    @staticmethod
    def _key(p: PrinterState) -> tuple:
        return (True, p.state, p.reasons, p.message) if p.in_error else (False,)

    def poll(self) -> int:
        """Ask CUPS, post the changes; how many printers were posted."""
        try:
            states = self.cups.printer_states()
        except CupsUnavailable as exc:
            if not self._cups_down:
                log.warning("CUPS does not answer (%s): printers' states not read now", exc)
            self._cups_down = True
            return 0
        self._cups_down = False
        now = datetime.fromtimestamp(self.wall_clock(), timezone.utc).isoformat()
        seen = {p.queue for p in states}
        for p in states:
            key = self._key(p)
            if self.posted.get(p.queue) == key:
                self.pending.pop(p.queue, None)
            elif p.queue not in self.pending or self.pending[p.queue][0] != key:
                self.pending[p.queue] = (key, _printer_json(p, now))
        for queue, key in list(self.posted.items()):
            if queue not in seen:  # removed from CUPS: an error it was in is over
                del self.posted[queue]
                if key[0]:
                    self.pending[queue] = ((False,), {"printer": queue, "state": "unknown", "reasons": [],
                                                      "message": "no longer in CUPS", "seen_at": now})
        return self._post()

    def _post(self) -> int:
        sent = 0
        items = sorted(self.pending.items())
        for i in range(0, len(items), MAX_PRINTERS_PER_POST):
            group = items[i:i + MAX_PRINTERS_PER_POST]
            try:
                self.client.printer_states([body for _, (_, body) in group])
            except ServerRejectedJobs as exc:
                # Refused as it stands (the server names the field): sending it again would not help.
                log.warning("printers' states refused by the server (%s): not sent again", exc.reasons())
            except ServerError as exc:
                log.warning("printers' states not posted yet (%s): trying again at the next poll", exc)
                return sent
            for queue, (key, body) in group:
                self.posted[queue] = key
                self.pending.pop(queue, None)
                if key[0]:
                    log.warning("printer %s in error: %s", queue, ", ".join(body["reasons"]) or body["state"])
            sent += len(group)
        return sent


def _printer_json(p: PrinterState, seen_at: str) -> dict:
    """A printer's state as the server takes it (api.services.PrinterStateSchema): reasons that
    are not IPP keywords and control characters are left out, the message cut to its bound."""
    reasons = [r for r in p.reasons if r != "none" and _KEYWORD.match(r)][:MAX_REASONS]
    message = _CONTROL.sub(" ", p.message)[:MAX_MESSAGE]
    state = p.state if p.state in ("idle", "processing", "stopped") else "unknown"
    return {"printer": p.queue, "state": state, "reasons": reasons, "message": message, "seen_at": seen_at}


class Journal:
    """Deliveries, kept across restarts: one row per (job, release), before and after ``lp``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection for the order taker and the follower thread, one statement at a time.
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("""CREATE TABLE IF NOT EXISTS deliveries (
            release TEXT PRIMARY KEY, job_id TEXT NOT NULL, state TEXT NOT NULL,
            server TEXT NOT NULL DEFAULT '', queue TEXT NOT NULL DEFAULT '', cups_job INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL DEFAULT 0, outcome TEXT NOT NULL DEFAULT '', why TEXT NOT NULL DEFAULT '',
            updated REAL NOT NULL)""")

    def _do(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    def get(self, release: str) -> sqlite3.Row | None:
        rows = self._do("SELECT * FROM deliveries WHERE release = ?", (release,))
        return rows[0] if rows else None

    def submitting(self, release: str, job_id: str) -> None:
        self._do("INSERT INTO deliveries (release, job_id, state, updated) VALUES (?, ?, 'submitting', ?)",
                        (release, job_id, time.time()))

    def submitted(self, release: str, ref: CupsJobRef) -> None:
        self._do("UPDATE deliveries SET state = 'submitted', server = ?, queue = ?, cups_job = ?, "
                        "created_at = ?, updated = ? WHERE release = ?",
                        (ref.server, ref.queue, ref.job_id, ref.created_at, time.time(), release))

    def decided(self, release: str, job_id: str, outcome: str, why: str) -> None:
        """The outcome to report (kept until the server has it)."""
        self._do("INSERT INTO deliveries (release, job_id, state, outcome, why, updated) "
                        "VALUES (?, ?, 'decided', ?, ?, ?) ON CONFLICT (release) DO UPDATE SET "
                        "state = 'decided', outcome = excluded.outcome, why = excluded.why, updated = excluded.updated",
                        (release, job_id, outcome, why, time.time()))

    def reported(self, release: str, job_id: str, outcome: str, why: str) -> None:
        self._do("INSERT INTO deliveries (release, job_id, state, outcome, why, updated) "
                        "VALUES (?, ?, 'reported', ?, ?, ?) ON CONFLICT (release) DO UPDATE SET "
                        "state = 'reported', outcome = excluded.outcome, why = excluded.why, updated = excluded.updated",
                        (release, job_id, outcome, why, time.time()))

    def following(self) -> list[sqlite3.Row]:
        return self._do("SELECT * FROM deliveries WHERE state IN ('submitted', 'decided') "
                               "ORDER BY updated")

    def prune(self, older_than: float = 30 * 86400) -> None:
        self._do("DELETE FROM deliveries WHERE state = 'reported' AND updated < ?",
                        (time.time() - older_than,))

    def close(self) -> None:
        self.db.close()


@dataclass
class Stats:
    submitted: int = 0
    printed: int = 0
    held_again: int = 0


class ReleaseService:
    def __init__(self, client: ReleaseClient, cups: CupsRelease, journal: Journal, work_dir: Path,
                 clock: Callable[[], float] = time.monotonic,
                 printer_poll_seconds: float = PRINTER_POLL_SECONDS) -> None:
        self.client = client
        self.printer_watch = PrinterWatch(client, cups)
        self.printer_poll_seconds = printer_poll_seconds
        self.cups = cups
        self.journal = journal
        self.work_dir = Path(work_dir)
        self.clock = clock
        self.stats = Stats()
        self._queues: list[str] = []
        self._queues_at = float("-inf")
        self._cups_down = False
        self.on_submitted: Callable[[str, float], None] | None = None  # job id, monotonic time (benchmarks)

    # -- one turn of the loop ------------------------------------------------------------

    def step(self, wait: float = ORDER_WAIT_SECONDS) -> int:
        """One turn of both loops (tests): take and deliver orders, then follow the CUPS jobs."""
        n = self.take_orders(0 if self.journal.following() else wait)
        self.follow_jobs()
        return n

    def release_queues(self) -> list[str]:
        """The release queues this service serves: those of its cupsd (``lpstat -v``), asked
        again every QUEUES_REFRESH_SECONDS, and at every turn while there are none. Routing by what
        CUPS has, not by a list to keep up to date: a print server's service is only ever handed
        the orders it can print, and two print servers never take each other's."""
        now = self.clock()
        if self._queues and now - self._queues_at < QUEUES_REFRESH_SECONDS:
            return self._queues
        try:
            queues = self.cups.release_queues()
        except CupsUnavailable as exc:
            if not self._cups_down:  # once an outage, not every turn
                log.warning("CUPS does not answer (%s): release queues not listed now", exc)
            self._cups_down = True
            if self._queues:
                self._queues_at = now  # ask again after QUEUES_REFRESH_SECONDS, not every turn
            return self._queues
        if self._cups_down:
            log.info("CUPS %s answers again", self.cups.server_name)
        self._cups_down = False
        if queues != self._queues:
            log.info("serving the release queues of CUPS %s: %s", self.cups.server_name,
                     ", ".join(queues) or "none (no orders are taken until one is created)")
        self._queues, self._queues_at = queues, now
        return queues

    def take_orders(self, wait: float) -> int:
        """Long-poll the server for the orders of this service's release queues (up to `wait` s)
        and deliver the new ones; with no release queue, wait and take none."""
        queues = self.release_queues()
        if not queues:
            time.sleep(wait)
            return 0
        orders = self.client.orders(wait, queues)
        for order in orders:
            self._order(order)
        return len(orders)

    def follow_jobs(self) -> None:
        """Follow the submitted CUPS jobs and report the ones that ended (and unsent reports)."""
        for row in self.journal.following():
            self._follow(row)

    def _order(self, order: dict) -> None:
        job_id, release = str(order["job_id"]), f"{order['job_id']}@{order['released_at']}"
        entry = self.journal.get(release)
        if entry is None:
            self._deliver(order, release)
        elif entry["state"] == "submitting":
            # Stopped between writing the journal and learning the CUPS job: whether cupsd has it
            # cannot be told apart from a job cache wipe, so nothing is sent twice: its owner decides.
            self._decide(release, job_id, "held", "the release was interrupted while it was handed to CUPS: "
                                                  "check the printer and release it again if it did not print")
        elif entry["state"] == "reported" and time.time() - entry["updated"] > REPORT_AGAIN_SECONDS:
            # Still an order long after it was reported: the report was lost on the way. (Just
            # after a report the order is still listed until the server's read model has it.)
            self._decide(release, job_id, entry["outcome"], entry["why"])

    def _deliver(self, order: dict, release: str) -> None:
        job_id, queue = str(order["job_id"]), str(order["release_queue"])
        try:
            printer = self.cups.printer_state(queue)
        except CupsUnavailable as exc:
            log.warning("CUPS does not answer (%s): job %s waits", exc, job_id)
            return
        why = printer.why_not_ready
        if why:
            self._decide(release, job_id, "held", why)
            return
        data = self.work_dir / f"release-{job_id}.data"
        try:
            self.client.fetch(job_id, str(order.get("spool", "")), data)
            self.journal.submitting(release, job_id)
            try:
                ref = self.cups.submit(queue, data, user=str(order["user"]), title=str(order.get("title", "")),
                                       pageledger_job=job_id)
            except CupsRefused as exc:
                self._decide(release, job_id, "held", f"CUPS refused the job on {queue}: {exc}")
                return
            self.journal.submitted(release, ref)
            self.stats.submitted += 1
            if self.on_submitted:
                self.on_submitted(job_id, self.clock())
            ref = self.cups.with_creation_time(ref)
            self.journal.submitted(release, ref)
            log.info("released job %s handed to CUPS as %s", job_id, ref)
        finally:
            data.unlink(missing_ok=True)

    def _follow(self, row) -> None:
        release, job_id = row["release"], row["job_id"]
        if row["state"] == "decided":
            printed = row["outcome"] == "printed"
            self._report(release, job_id, row["outcome"], "" if printed else row["why"], row["why"] if printed else "")
            return
        ref = CupsJobRef(row["server"], row["queue"], int(row["cups_job"]), int(row["created_at"]))
        try:
            state = self.cups.job_state(ref)
        except CupsUnavailable as exc:
            log.warning("CUPS does not answer (%s): following %s later", exc, ref)
            return
        if state.state == "completed":
            self._report(release, job_id, "printed", "", str(ref))
        elif state.state in ("canceled", "aborted"):
            self._decide(release, job_id, "held", f"CUPS {state.state} the job on {ref.queue}"
                                                  f"{': ' + (state.message or state.reasons) if state.message or state.reasons else ''}",
                         str(ref))
        elif state.state == "gone":
            self._decide(release, job_id, "held", f"CUPS no longer knows job {ref.job_id} on {ref.queue} (its job "
                                                  "history was lost): check the printer and release it again if "
                                                  "it did not print", str(ref))

    def _decide(self, release: str, job_id: str, outcome: str, why: str, cups_job: str = "") -> None:
        self.journal.decided(release, job_id, outcome, why)
        self._report(release, job_id, outcome, why, cups_job)

    def _report(self, release: str, job_id: str, outcome: str, why: str, cups_job: str) -> None:
        try:
            self.client.report(job_id, outcome, why=why or cups_job, cups_job=cups_job)
        except ServerRejectedJobs as exc:
            # The server's record has moved on (deleted meanwhile, reported before): it decides.
            log.warning("outcome of job %s (%s) refused by the server (%s): not reported again", job_id, outcome,
                        exc.reasons())
            self.journal.reported(release, job_id, outcome, why)
            return
        except ServerError as exc:
            self.journal.decided(release, job_id, outcome, why or cups_job)
            log.warning("outcome of job %s (%s) not reported yet: %s", job_id, outcome, exc)
            return
        self.journal.reported(release, job_id, outcome, why or cups_job)
        if outcome == "printed":
            self.stats.printed += 1
        else:
            self.stats.held_again += 1
            log.warning("released job %s not printed: %s", job_id, why)

    # -- running -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Two loops: this thread takes orders (long poll, so a release is taken the moment it is
        listed), a second one follows CUPS jobs and reports what became of them."""
        follower = threading.Thread(target=self._follow_loop, args=(stop,), name="release-follower", daemon=True)
        follower.start()
        threading.Thread(target=self._readers_loop, args=(stop,), name="card-readers", daemon=True).start()
        threading.Thread(target=self._printers_loop, args=(stop,), name="printer-states", daemon=True).start()
        failures = 0
        log.info("release service started (CUPS %s)", self.cups.server_name)
        while not stop.is_set():
            try:
                self.take_orders(ORDER_WAIT_SECONDS)
                failures = 0
            except ServerError as exc:
                pause = RETRY_PAUSES[min(failures, len(RETRY_PAUSES) - 1)]
                failures += 1
                log.warning("server not reached (%s): trying again in %g s", exc, pause)
                stop.wait(pause)
        follower.join(timeout=30)
        log.info("release service stopped")

    # -- card readers ----------------------------------------------------------------------

    def swiped(self, printer: str, fmt: CardFormat, line: str) -> None:
        """One line from a reader: the normalised card number to the server, which releases."""
        try:
            card, problem = normalise(line, fmt), ""
        except BadCardLine as exc:
            card, problem = "", str(exc)
        try:
            answer = self.client.swipe(printer, card, problem)
            log.info("card swiped at %s: %s (%d jobs)", printer, answer.get("outcome"), len(answer.get("jobs", [])))
        except ServerRejectedJobs as exc:
            log.warning("card line at %s refused: %s", printer, exc.reasons())
        except ServerError as exc:
            log.warning("card swipe at %s not passed on: %s", printer, exc)

    def _readers_loop(self, stop: threading.Event) -> None:
        running: dict[tuple, threading.Thread] = {}
        while not stop.is_set():
            try:
                readers = self.client.card_readers()
            except ServerError as exc:
                log.debug("card readers not listed now: %s", exc)
                readers = []
            ours = {q.lower() for q in self.release_queues()}
            for reader in readers:
                if release_queue_name(str(reader.get("printer", ""))).lower() not in ours:
                    continue  # another print server's reader
                key = (reader.get("printer"), reader.get("host"), reader.get("port"), json.dumps(reader, sort_keys=True))
                if key in running and running[key].is_alive():
                    continue
                fmt = CardFormat.from_setting(reader)
                printer = str(reader["printer"])
                connection = CardReaderConnection(str(reader["host"]), int(reader["port"]),
                                                  lambda line, p=printer, f=fmt: self.swiped(p, f, line))
                running[key] = threading.Thread(target=connection.run, args=(stop,), daemon=True,
                                                name=f"card-reader {reader['host']}:{reader['port']}")
                running[key].start()
            stop.wait(READERS_REFRESH_SECONDS)

    def _printers_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.printer_watch.poll()
            except Exception:  # noqa: BLE001 - the next poll tries again
                log.exception("reading the printers' states failed; trying again")
            stop.wait(self.printer_poll_seconds)

    def _follow_loop(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                self.follow_jobs()
            except Exception:  # noqa: BLE001 - a report that failed is retried at the next turn
                log.exception("following CUPS jobs failed; trying again")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pageledger-release-service",
                                     description="print released jobs through this print server's CUPS")
    parser.add_argument("--state-dir", type=Path, default=None, help="the agent's state dir (agent.ini)")
    parser.add_argument("--cups-server", default="", help="host:port of cupsd (default: the local one)")
    parser.add_argument("--services-url", default="", help="overrides the agent's ServicesUrl")
    parser.add_argument("--printer-poll-seconds", type=float, default=None,
                        help="how often CUPS is asked for the printers' states (default: the agent's "
                             f"PrinterPollSeconds, else {PRINTER_POLL_SECONDS:g})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state_dir = args.state_dir or state_dir_from_environment()
    token = os.environ.get("PAGELEDGER_RELEASE_TOKEN", "")
    url = args.services_url
    poll = args.printer_poll_seconds
    if not (token and url and poll):
        try:
            config = load_config(state_dir)
        except ConfigError as exc:
            if token and url:  # no agent.ini needed (``pageledger up``, tests)
                config = None
            else:
                print(f"pageledger-release-service: {exc}", file=sys.stderr)
                return 2
        if config is not None:
            token, url = token or config.agent_token, url or config.services_url
            poll = poll or config.printer_poll_seconds
    if not 1 <= (poll or PRINTER_POLL_SECONDS) <= 3600:
        print("pageledger-release-service: --printer-poll-seconds must be between 1 and 3600", file=sys.stderr)
        return 2
    journal = Journal(state_dir / "release-journal.sqlite3")
    work = state_dir / "release-work"
    work.mkdir(parents=True, exist_ok=True)
    service = ReleaseService(ReleaseClient(url, token, timeout=30), CupsRelease(args.cups_server, work), journal,
                             work, printer_poll_seconds=poll or PRINTER_POLL_SECONDS)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        service.run(stop)
    finally:
        journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
