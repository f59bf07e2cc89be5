"""Running scheduled reports (and the server's own daily tasks) when they are due.

`ScheduledRuns.tick()` is the whole loop body, whoever calls it: `pageledger worker` runs it as
an rq job on Redis (enqueued every minute, once per minute whichever worker enqueues it), and
`pageledger up` without Redis runs it in a thread of its projection process. For each schedule
whose cron time has come (in the site's time zone) it claims the run (one worker wins), runs
the report for its period, renders it, and e-mails it as an attachment; a failure is retried
(`attempts`, with pauses), and a run that still fails is recorded (RunFailed, shown by the API
and the CLI) and reported to the admins by e-mail: never silently dropped. After a worker was
down, a schedule runs once for its latest due time, not once for every time missed.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Callable, Mapping, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from croniter import croniter

from commands.report_schedules import ScheduleRuns
from domain.report_schedules import TASKS
from domain.units import from_micros, to_micros
from projections.report_formats import MEDIA_TYPES, render, report_json
from projections.report_period import parse_parameters
from projections.report_schedules import ScheduleRow, list_schedules
from projections.reports import CATALOGUE, ReportSources, iter_jobs, run_report

log = logging.getLogger("pageledger.schedules")

MAX_CATCH_UP = 10_000  # cron steps looked at to find the latest due time


class Mailer(Protocol):
    sender: str
    recipients: tuple[str, ...]

    def send(self, message: EmailMessage) -> None: ...


def latest_due(cron: str, after: int, now: int, zone: ZoneInfo) -> int | None:
    """The latest time the cron expression names in (after, now], in µs; None if none."""
    it = croniter(cron, from_micros(after).astimezone(zone))
    due = None
    for _ in range(MAX_CATCH_UP):
        t = to_micros(it.get_next(datetime))
        if t > now:
            break
        due = t
    return due


def period_of(period: str, due: int, zone: ZoneInfo) -> dict[str, str]:
    """`from` and `to` of a schedule's period, relative to the run's due time (site's days)."""
    today = from_micros(due).astimezone(zone).date()
    yesterday = today - timedelta(days=1)
    if period == "previous-day":
        return {"from": yesterday.isoformat(), "to": yesterday.isoformat()}
    if period == "previous-week":
        monday = today - timedelta(days=today.weekday() + 7)
        return {"from": monday.isoformat(), "to": (monday + timedelta(days=6)).isoformat()}
    if period == "previous-month":
        last = today.replace(day=1) - timedelta(days=1)
        return {"from": last.replace(day=1).isoformat(), "to": last.isoformat()}
    if period == "month-to-date":
        return {"from": today.replace(day=1).isoformat(), "to": from_micros(due).isoformat()}
    days = 7 if period == "last-7-days" else 30
    return {"from": (today - timedelta(days=days)).isoformat(), "to": yesterday.isoformat()}


@dataclass(frozen=True)
class Rendered:
    filename: str
    media_type: str
    content: bytes
    summary: str


class ScheduledRuns:
    def __init__(self, reader: sa.Engine, runs: ScheduleRuns, sources: ReportSources, mailer: Callable[[tuple[str, ...]], Mailer],
                 admins: tuple[str, ...], tasks: Mapping[str, Callable[[], str]], clock: Callable[[], int],
                 attempts: int = 3, pauses: tuple[float, ...] = (5.0, 30.0)) -> None:
        self.reader = reader
        self.runs = runs
        self.sources = sources
        self.mailer = mailer  # recipients → a mailer sending to them
        self.admins = admins
        self.tasks = tasks
        self.clock = clock
        self.attempts = attempts
        self.pauses = pauses

    def zone(self) -> ZoneInfo:
        return ZoneInfo(str(self.sources.settings().get("timezone", "UTC")))

    def due(self, now: int) -> list[tuple[ScheduleRow, int]]:
        with self.reader.connect() as conn:
            rows = list_schedules(conn)
        zone = self.zone()
        out = []
        for row in rows:
            due = latest_due(row.cron, max(row.last_due, row.defined_at), now, zone)
            if due is not None and due > row.last_due:
                out.append((row, due))
        return out

    def tick(self) -> list[tuple[str, str]]:
        """Run every schedule that is due; returns (name, outcome) for each one this worker ran."""
        done = []
        for row, due in self.due(self.clock()):
            schedule = self.runs.claim(row.name, due)
            if schedule is None:
                continue  # another worker has it
            done.append((row.name, self._run(schedule, row, due)))
        return done

    def _run(self, schedule, row: ScheduleRow, due: int) -> str:
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                if row.report in TASKS:
                    what = self.tasks[row.report]()
                    self.runs.sent(schedule, due, attempt, 0, 0)
                    log.info("scheduled task %s ran: %s", row.name, what)
                    return "sent"
                if not row.recipients:  # every recipient was an erased user's address: nobody to mail
                    self.runs.sent(schedule, due, attempt, 0, 0)
                    log.info("scheduled report %s has no recipient left: not mailed", row.name)
                    return "sent"
                rendered = self.render(row, due)
                self.mailer(tuple(row.recipients)).send(self.message(row, rendered))
                self.runs.sent(schedule, due, attempt, len(row.recipients), len(rendered.content))
                log.info("scheduled report %s sent to %d recipients (%d bytes, attempt %d)", row.name,
                         len(row.recipients), len(rendered.content), attempt)
                return "sent"
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then recorded and reported
                error = f"{type(exc).__name__}: {exc}"
                log.warning("scheduled report %s failed (attempt %d of %d): %s", row.name, attempt, self.attempts,
                            error)
                if attempt < self.attempts:
                    time.sleep(self.pauses[min(attempt - 1, len(self.pauses) - 1)] if self.pauses else 0)
        self.runs.failed(schedule, due, self.attempts, error)
        log.error("scheduled report %s failed after %d attempts: %s", row.name, self.attempts, error)
        self._report_failure(row, due, error)
        return "failed"

    def render(self, row: ScheduleRow, due: int) -> Rendered:
        zone = self.zone()
        raw = {**row.parameters, **period_of(row.period, due, zone)}
        p = parse_parameters(raw, site_timezone=str(zone.key), now=due, allowed=CATALOGUE[row.report].parameters)
        report = run_report(self.reader, row.report, p, self.sources)
        privacy = str(self.sources.settings().get("document_names", "keep"))
        chunks = (lambda: iter_jobs(self.reader, p, privacy)) if row.report == "jobs" else None
        content = b"".join(render(report, row.format, chunks))
        data = report_json(report)
        lines = [f"{report.title}, from {data['period']['from']} to {data['period']['to']} ({p.timezone})", ""]
        for s in data["sections"]:
            if s.get("totals"):
                lines.append(f"{s['title']}: " + ", ".join(f"{k} {v}" for k, v in s["totals"].items()))
        return Rendered(f"{row.report}-{raw['from']}.{row.format}", MEDIA_TYPES[row.format], content, "\n".join(lines))

    def message(self, row: ScheduleRow, r: Rendered) -> EmailMessage:
        mailer = self.mailer(tuple(row.recipients))
        msg = EmailMessage()
        msg["Subject"] = f"PageLedger report: {row.name}"
        msg["From"] = mailer.sender
        msg["To"] = ", ".join(row.recipients)
        msg.set_content(r.summary + "\n\nThe report is attached.\n")
        maintype, _, subtype = r.media_type.split(";")[0].partition("/")
        msg.add_attachment(r.content, maintype=maintype, subtype=subtype, filename=r.filename)
        return msg

    def _report_failure(self, row: ScheduleRow, due: int, error: str) -> None:
        if not self.admins:
            log.error("no admin e-mail addresses (admin_emails) to report the failed run of %s to", row.name)
            return
        mailer = self.mailer(self.admins)
        msg = EmailMessage()
        msg["Subject"] = f"PageLedger: the scheduled report {row.name} could not be sent"
        msg["From"] = mailer.sender
        msg["To"] = ", ".join(self.admins)
        msg.set_content(f"The run of {row.name} due at {from_micros(due).isoformat()} failed {self.attempts} times.\n"
                        f"Last error: {error}\n\nIt is recorded as failed; the next run is at its next cron time.\n")
        try:
            mailer.send(msg)
        except Exception as exc:  # noqa: BLE001 - the failure is recorded already; say so in the log
            log.error("the failure of %s could not be reported by e-mail either: %s", row.name, exc)



class ScheduleLoop:
    """`tick` every `interval` seconds in a thread of its own: the worker inside `pageledger up`
    when no Redis is configured. A tick that fails is logged and the loop goes on."""

    def __init__(self, tick: Callable[[], object], interval: float) -> None:
        self.tick = tick
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scheduled-reports", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the next tick tries again
                log.exception("looking for due scheduled reports failed; trying again in %.0f s", self.interval)
            self._stop.wait(self.interval)
