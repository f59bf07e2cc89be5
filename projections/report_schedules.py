"""The scheduled reports read model: each schedule's definition and its last run, for the
worker (what is due) and the API (what is defined, and how its last run went)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.report_schedules import ReportSchedule
from projections.follower import Projection, metadata

report_schedules = sa.Table(
    "report_schedules", metadata,
    sa.Column("schedule_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("report", sa.String(64), nullable=False),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("cron", sa.String(100), nullable=False),
    sa.Column("period", sa.String(32), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),  # JSON object
    sa.Column("recipients", sa.Text, nullable=False),  # JSON array
    sa.Column("defined_at", sa.BigInteger, nullable=False),
    sa.Column("defined_by", sa.String(255), nullable=False),
    sa.Column("removed", sa.Boolean, nullable=False),
    sa.Column("last_due", sa.BigInteger, nullable=False),  # 0: never run
    sa.Column("last_outcome", sa.String(16), nullable=False),  # "", claimed, sent, failed
    sa.Column("last_attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500), nullable=False),
    sa.Column("last_run_at", sa.BigInteger, nullable=False),
)

_TOPICS = (ReportSchedule.Defined, ReportSchedule.Redefined, ReportSchedule.Removed, ReportSchedule.RunClaimed,
           ReportSchedule.RunSent, ReportSchedule.RunFailed)


def _addresses(recipients: Sequence[str]) -> list[str]:
    """The addresses to mail: an erased user's address reads as "" (domain.report_schedules)."""
    return [a for a in recipients if a]


class ReportSchedulesProjection(Projection):
    name = "report_schedules"
    topics = tuple(short_topic(t) for t in _TOPICS)
    tables = (report_schedules,)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        t = report_schedules
        for _, e in events:
            if e.event_class is ReportSchedule.Defined:
                conn.execute(t.insert().values(
                    schedule_id=str(e.originator_id), name=e.name, report=e.report, format=e.format, cron=e.cron,
                    period=e.period, parameters=json.dumps(e.parameters), recipients=json.dumps(_addresses(e.recipients)),
                    defined_at=e.at, defined_by=e.by[:255], removed=False, last_due=0, last_outcome="",
                    last_attempts=0, last_error="", last_run_at=0))
                continue
            if e.event_class is ReportSchedule.Redefined:
                values: dict[str, Any] = dict(report=e.report, format=e.format, cron=e.cron, period=e.period,
                                              parameters=json.dumps(e.parameters),
                                              recipients=json.dumps(_addresses(e.recipients)), defined_at=e.at,
                                              defined_by=e.by[:255], removed=False)
            elif e.event_class is ReportSchedule.Removed:
                values = {"removed": True}
            elif e.event_class is ReportSchedule.RunClaimed:
                values = {"last_due": e.due, "last_outcome": "claimed", "last_attempts": 0, "last_error": "",
                          "last_run_at": e.at}
            elif e.event_class is ReportSchedule.RunSent:
                values = {"last_outcome": "sent", "last_attempts": e.attempts, "last_run_at": e.at}
            else:
                values = {"last_outcome": "failed", "last_attempts": e.attempts, "last_error": e.error[:500],
                          "last_run_at": e.at}
            conn.execute(t.update().where(t.c.schedule_id == str(e.originator_id)).values(**values))


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    report: str
    format: str
    cron: str
    period: str
    parameters: dict
    recipients: list
    defined_at: int
    defined_by: str
    removed: bool
    last_due: int
    last_outcome: str
    last_attempts: int
    last_error: str
    last_run_at: int


def list_schedules(conn: sa.Connection, *, include_removed: bool = False) -> list[ScheduleRow]:
    q = sa.select(report_schedules).order_by(report_schedules.c.name)
    if not include_removed:
        q = q.where(report_schedules.c.removed.is_(False))
    return [ScheduleRow(name=r.name, report=r.report, format=r.format, cron=r.cron, period=r.period,
                        parameters=json.loads(r.parameters), recipients=json.loads(r.recipients),
                        defined_at=r.defined_at, defined_by=r.defined_by, removed=bool(r.removed),
                        last_due=r.last_due, last_outcome=r.last_outcome, last_attempts=r.last_attempts,
                        last_error=r.last_error, last_run_at=r.last_run_at)
            for r in conn.execute(q)]
