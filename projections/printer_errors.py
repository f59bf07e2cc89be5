"""Printers in error: one row per period a CUPS printer was stopped or reported an error, as
the release service saw it (PrinterStatus.ErrorSeen, ErrorCleared), for the workflow report."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.printers import PrinterStatus
from projections.follower import Projection, metadata

MAX_REASONS_TEXT = 1000
MAX_MESSAGE = 1000

printer_errors = sa.Table(
    "printer_errors", metadata,
    sa.Column("printer", sa.String(255), primary_key=True),  # the CUPS queue, as the release service names it
    sa.Column("started_at", sa.BigInteger, primary_key=True),  # µs
    sa.Column("ended_at", sa.BigInteger, nullable=True),  # µs; NULL: still in error
    sa.Column("reasons", sa.String(MAX_REASONS_TEXT), nullable=False),  # every reason seen in the period, comma-separated
    sa.Column("message", sa.String(MAX_MESSAGE), nullable=False),  # the last printer-state-message of the period
    sa.Index("ix_printer_errors_started_at", "started_at"),
)


class PrinterErrorsProjection(Projection):
    name = "printer_errors"
    topics = tuple(short_topic(t) for t in (PrinterStatus.ErrorSeen, PrinterStatus.ErrorCleared))
    tables = (printer_errors,)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        c = printer_errors.c
        for _, e in events:
            if e.event_class not in (PrinterStatus.ErrorSeen, PrinterStatus.ErrorCleared):
                continue
            printer = e.printer[:255]
            open_row = conn.execute(sa.select(c.started_at, c.reasons).where(
                c.printer == printer, c.ended_at.is_(None))).first()
            if e.event_class is PrinterStatus.ErrorSeen:
                if open_row is None:
                    conn.execute(printer_errors.insert().values(
                        printer=printer, started_at=e.at, ended_at=None,
                        reasons=_joined([], e.reasons), message=e.message[:MAX_MESSAGE]))
                else:
                    conn.execute(printer_errors.update().where(
                        c.printer == printer, c.started_at == open_row.started_at).values(
                        reasons=_joined(open_row.reasons.split(",") if open_row.reasons else [], e.reasons),
                        message=e.message[:MAX_MESSAGE]))
            elif e.event_class is PrinterStatus.ErrorCleared and open_row is not None:
                conn.execute(printer_errors.update().where(
                    c.printer == printer, c.started_at == open_row.started_at).values(ended_at=e.at))


def _joined(before: list[str], new: Sequence[str]) -> str:
    """The reasons of a period so far and the new ones, each once, in the order first seen."""
    reasons = list(dict.fromkeys([*before, *(r for r in new if r and r != "none")]))
    text = ",".join(reasons)
    return text if len(text) <= MAX_REASONS_TEXT else text[:MAX_REASONS_TEXT].rsplit(",", 1)[0]


@dataclass(frozen=True)
class ErrorPeriod:
    printer: str
    started_at: int
    ended_at: int | None
    reasons: str
    message: str


def errors_between(conn: sa.Connection, since: int, until: int, printers: Sequence[str] | None = None,
                   limit: int | None = None) -> list[ErrorPeriod]:
    """The error periods that overlap [since, until), oldest first; `printers` (lower-case
    names) narrows them."""
    c = printer_errors.c
    q = sa.select(c.printer, c.started_at, c.ended_at, c.reasons, c.message).where(
        c.started_at < until, sa.or_(c.ended_at.is_(None), c.ended_at > since))
    if printers is not None:
        q = q.where(sa.func.lower(c.printer).in_(list(printers)))
    q = q.order_by(c.started_at, c.printer)
    if limit is not None:
        q = q.limit(limit)
    return [ErrorPeriod(*row) for row in conn.execute(q)]
