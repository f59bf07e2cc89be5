"""Scheduled reports: define, remove, claim a run and record its outcome. The one writer of
ReportSchedule aggregates.

A schedule is checked completely when it is defined — its report and parameters (by the
report catalogue, injected as `check_report`), its cron expression (croniter), its format and
every recipient address — so a bad one is refused then, naming the field, never at 3 a.m.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Callable, Mapping, Sequence

from croniter import croniter
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from commands.validation import InvalidRequest
from domain.report_schedules import PERIODS, TASKS, ReportSchedule, ScheduleNotRunnable, report_schedule_id

log = logging.getLogger("pageledger.schedules")

FORMATS = ("csv", "xlsx", "pdf", "html")
MAX_RECIPIENTS = 50
MAX_ADDRESS = 254
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def address_problem(text: object) -> str | None:
    """Why `text` is not one plain e-mail address (None: it is)."""
    if not isinstance(text, str) or not text or len(text) > MAX_ADDRESS or _CONTROL.search(text) or "," in text:
        return "not an e-mail address"
    try:
        address = Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError):
        return "not an e-mail address"
    if not address.username or "." not in address.domain.strip(".") or address.addr_spec != text:
        return "not an e-mail address (name@domain.example)"
    return None


def cron_problem(text: object) -> str | None:
    if not isinstance(text, str) or len(text) > 100 or _CONTROL.search(text) or len(text.split()) != 5 \
            or not croniter.is_valid(text):
        return "not a cron expression of five fields (minute hour day-of-month month day-of-week), e.g. 0 7 * * 1"
    return None


@dataclass(frozen=True)
class ScheduleDefinition:
    name: str
    report: str
    parameters: Mapping[str, str]
    format: str
    cron: str
    recipients: tuple[str, ...]
    period: str = "previous-day"


def check_definition(d: ScheduleDefinition, check_report: Callable[[str, Mapping[str, str]], dict[str, list[str]]]
                     ) -> None:
    errors: dict[str, list[str]] = {}
    if not isinstance(d.name, str) or not _NAME.match(d.name):
        errors["name"] = ["1 to 100 letters, digits, spaces, dots, dashes or underscores"]
    if problem := cron_problem(d.cron):
        errors["cron"] = [problem]
    if d.format not in FORMATS:
        errors["format"] = [f"one of: {', '.join(FORMATS)}"]
    if d.period not in PERIODS:
        errors["period"] = [f"one of: {', '.join(PERIODS)}"]
    if d.report not in TASKS:
        if not 1 <= len(d.recipients) <= MAX_RECIPIENTS:
            errors["recipients"] = [f"1 to {MAX_RECIPIENTS} addresses"]
        for i, address in enumerate(d.recipients[:MAX_RECIPIENTS + 1]):
            if problem := address_problem(address):
                errors[f"recipients.{i}"] = [problem]
        for key in ("from", "to"):
            if key in d.parameters:
                errors[f"parameters.{key}"] = ["a schedule's period is set by `period`, relative to each run"]
        for key, messages in check_report(d.report, d.parameters).items():
            errors["report" if key == "name" else f"parameters.{key}"] = messages
    if errors:
        raise InvalidRequest(errors)


class DefineSchedule:
    """Define (or redefine) a scheduled report by name; InvalidRequest names every bad field.

    Each recipient address that is a user's (`logins_of_addresses`: lower-cased address -> login)
    is recorded with that user's login beside it, and the store seals it with their key: once
    they are erased it reads as "" and is mailed no more. An address of no known user is the
    admin's configuration, recorded as it is (docs/audit-privacy.md)."""

    def __init__(self, app: PageLedger, check_report: Callable[[str, Mapping[str, str]], dict[str, list[str]]],
                 clock: Callable[[], int],
                 logins_of_addresses: Callable[[Sequence[str]], Mapping[str, str]] = lambda addresses: {}) -> None:
        self.app = app
        self.check_report = check_report
        self.clock = clock
        self.logins_of_addresses = logins_of_addresses

    def __call__(self, d: ScheduleDefinition, *, by: str) -> ReportSchedule:
        check_definition(d, self.check_report)
        sid = report_schedule_id(self.app.server_id, d.name)
        owners = self.logins_of_addresses(list(d.recipients))
        fields = dict(report=d.report, parameters=dict(d.parameters), format=d.format, cron=d.cron,
                      recipients=list(d.recipients), period=d.period,
                      recipient_users=tuple(owners.get(a.strip().lower(), "") for a in d.recipients))

        def attempt() -> ReportSchedule:
            try:
                schedule: ReportSchedule = self.app.repository.get(sid)
            except AggregateNotFoundError:
                schedule = ReportSchedule.define(sid, name=d.name, by=by, at=self.clock(), **fields)
            else:
                if (not schedule.removed and schedule.report == d.report and schedule.parameters == fields["parameters"]
                        and schedule.format == d.format and schedule.cron == d.cron
                        and schedule.recipients == fields["recipients"] and schedule.period == d.period
                        and tuple(schedule.recipient_users) == fields["recipient_users"]):
                    return schedule  # the same definition: nothing to record
                schedule.redefine(by=by, at=self.clock(), **fields)
            self.app.save(schedule)
            return schedule

        schedule = retry_on_conflict(attempt, what=f"define the schedule {d.name}")
        log.info("scheduled report %s defined by %s: %s as %s, cron %r, %d recipients", d.name, by, d.report,
                 d.format, d.cron, len(d.recipients))
        return schedule


class RemoveSchedule:
    def __init__(self, app: PageLedger, clock: Callable[[], int]) -> None:
        self.app = app
        self.clock = clock

    def __call__(self, name: str, *, by: str) -> bool:
        """False when there is no such schedule (or it was removed already)."""
        sid = report_schedule_id(self.app.server_id, name)

        def attempt() -> bool:
            try:
                schedule: ReportSchedule = self.app.repository.get(sid)
            except AggregateNotFoundError:
                return False
            if schedule.removed:
                return False
            schedule.remove(by=by, at=self.clock())
            self.app.save(schedule)
            return True

        removed = retry_on_conflict(attempt, what=f"remove the schedule {name}")
        if removed:
            log.info("scheduled report %s removed by %s", name, by)
        return removed


class ScheduleRuns:
    """Claim a due run (only one worker gets it) and record how it ended."""

    def __init__(self, app: PageLedger, clock: Callable[[], int]) -> None:
        self.app = app
        self.clock = clock

    def load(self, name: str) -> ReportSchedule | None:
        try:
            return self.app.repository.get(report_schedule_id(self.app.server_id, name))
        except AggregateNotFoundError:
            return None

    def claim(self, name: str, due: int) -> ReportSchedule | None:
        """The schedule, claimed for the run due at `due`; None when another worker has it."""
        schedule = self.load(name)
        if schedule is None:
            return None
        try:
            schedule.claim(due, self.clock())
            self.app.save(schedule)
        except (ScheduleNotRunnable, IntegrityError):  # IntegrityError: another worker claimed it first
            return None
        return schedule

    def sent(self, schedule: ReportSchedule, due: int, attempts: int, recipients: int, size: int) -> None:
        schedule.sent(due=due, at=self.clock(), attempts=attempts, recipients=recipients, bytes_sent=size)
        self.app.save(schedule)

    def failed(self, schedule: ReportSchedule, due: int, attempts: int, error: str) -> None:
        schedule.failed(due=due, at=self.clock(), attempts=attempts, error=error[:500])
        self.app.save(schedule)
