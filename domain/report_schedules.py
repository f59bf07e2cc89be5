"""ReportSchedule: a report an admin asked to receive by e-mail on a schedule, and its runs.

Each run is first claimed (RunClaimed, for one due time, saved against the aggregate's
version): of several workers only the one whose save succeeded runs it. Its outcome is then
recorded (RunSent, or RunFailed after its retries): a run is never silently dropped. A claim
without an outcome after CLAIM_EXPIRES_US (a worker that died mid-run) may be claimed again.

The same schedule runs the server's own daily tasks — the licence notice and the user sync —
as schedules whose `report` is a task name (TASKS), so every timed job has one home.

Field order of each event is its stored order: append new fields at the end.
"""
from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

TASKS = ("task:licence-notice", "task:user-sync")
CLAIM_EXPIRES_US = 3600 * 1_000_000
# Periods a scheduled report covers, relative to the time it is due (days in the site's zone).
PERIODS = ("previous-day", "previous-week", "previous-month", "month-to-date", "last-7-days", "last-30-days")


def report_schedule_id(server_id: str, name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:report-schedule:{name.lower()}")


class ScheduleNotRunnable(ValueError):
    pass


class ReportSchedule(Aggregate):
    """`recipient_users` (appended) holds, at the index of each of `recipients`, the login of the
    user whose address it is, or "" for an address of no known user: the store seals a user's
    address with that user's key (adapters.personal_keys), so it reads as "" once they are
    erased, and is mailed no more (projections.report_schedules)."""

    class Defined(Aggregate.Created):
        name: str
        report: str
        parameters: dict
        format: str
        cron: str
        recipients: list
        period: str
        by: str
        at: int
        recipient_users: tuple = ()

        APPENDED_DEFAULTS = {"recipient_users": ()}

    @event(Defined)
    def __init__(self, name: str, report: str, parameters: dict, format: str, cron: str, recipients: list,
                 period: str, by: str, at: int, recipient_users: tuple = ()) -> None:
        self.name = name
        self._set(report, parameters, format, cron, recipients, period)
        self.recipient_users = tuple(recipient_users)
        self.defined_at = at
        self.removed = False
        self.last_due = 0  # the due time of the last run claimed (µs), 0 = none yet
        self.claimed_at = 0
        self.outcome = ""  # "", "sent" or "failed" for the last claimed run

    @classmethod
    def define(cls, schedule_id: UUID, **fields: object) -> "ReportSchedule":
        return cls._create(cls.Defined, id=schedule_id, **fields)

    def _set(self, report: str, parameters: dict, format: str, cron: str, recipients: list, period: str) -> None:
        self.report, self.parameters, self.format = report, dict(parameters), format
        self.cron, self.recipients, self.period = cron, list(recipients), period

    class Redefined(Aggregate.Event):
        report: str
        parameters: dict
        format: str
        cron: str
        recipients: list
        period: str
        by: str
        at: int
        recipient_users: tuple = ()

        APPENDED_DEFAULTS = {"recipient_users": ()}

    @event(Redefined)
    def redefine(self, report: str, parameters: dict, format: str, cron: str, recipients: list, period: str,
                 by: str, at: int, recipient_users: tuple = ()) -> None:
        self._set(report, parameters, format, cron, recipients, period)
        self.recipient_users = tuple(recipient_users)
        self.removed = False

    @event("Removed")
    def remove(self, by: str, at: int) -> None:
        self.removed = True

    def claim(self, due: int, now: int) -> None:
        """Take the run due at `due` (µs) for this worker, or refuse: removed, or already taken."""
        if self.removed:
            raise ScheduleNotRunnable(f"the schedule {self.name} was removed")
        if due < self.last_due or (due == self.last_due and (self.outcome or now - self.claimed_at < CLAIM_EXPIRES_US)):
            raise ScheduleNotRunnable(f"the run of {self.name} due at {due} was taken already")
        self._claimed(due=due, at=now)

    @event("RunClaimed")
    def _claimed(self, due: int, at: int) -> None:
        self.last_due, self.claimed_at, self.outcome = due, at, ""

    @event("RunSent")
    def sent(self, due: int, at: int, attempts: int, recipients: int, bytes_sent: int) -> None:
        self.outcome = "sent"

    @event("RunFailed")
    def failed(self, due: int, at: int, attempts: int, error: str) -> None:
        self.outcome = "failed"
