"""Printers in error: the release service reports what it saw of its CUPS printers, and each
change becomes an event of the printer's PrinterStatus (ErrorSeen, ErrorCleared)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from eventsourcing.application import AggregateNotFoundError

from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from commands.ports import Clock
from commands.validation import InvalidRequest
from domain.printers import PrinterStatus, is_error_state, printer_status_id
from domain.units import MICROS_PER_DAY

# A report may arrive late (the server could not be reached: the agent sends it again) but not
# from the future: the agent's clock may run ahead of the server's by a few minutes at most.
LATEST_AHEAD_US = 5 * 60 * 1_000_000
EARLIEST_BEHIND_US = 30 * MICROS_PER_DAY


@dataclass(frozen=True)
class PrinterObservation:
    """One printer's state as CUPS gave it (printer-state, printer-state-reasons, -message)."""

    printer: str
    state: str  # idle | processing | stopped | unknown
    reasons: tuple[str, ...]
    message: str
    seen_at: int  # µs

    @property
    def in_error(self) -> bool:
        return is_error_state(self.state, self.reasons)


@dataclass(frozen=True)
class ObservationOutcome:
    printer: str
    in_error: bool
    recorded: bool  # False: no news (same state as recorded, or older than the last change)


class RecordPrinterStates:
    """Record a batch of printer states: all or nothing, in one transaction."""

    def __init__(self, app: PageLedger, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    def __call__(self, observations: Sequence[PrinterObservation]) -> list[ObservationOutcome]:
        now = self.clock()
        errors = {f"printers.{i}.seen_at": ["more than 5 minutes ahead of the server's clock"
                                            if o.seen_at > now else "more than 30 days ago"]
                  for i, o in enumerate(observations)
                  if not now - EARLIEST_BEHIND_US <= o.seen_at <= now + LATEST_AHEAD_US}
        seen: dict[str, int] = {}
        for i, o in enumerate(observations):
            if o.printer.lower() in seen:
                errors[f"printers.{i}.printer"] = [f"named twice (also printers.{seen[o.printer.lower()]})"]
            seen.setdefault(o.printer.lower(), i)
        if errors:
            raise InvalidRequest(errors)

        def attempt() -> list[ObservationOutcome]:
            statuses, outcomes = [], []
            for o in observations:
                status = self._status(o.printer, create=o.in_error)
                recorded = status is not None and status.observe(
                    in_error=o.in_error, reasons=list(o.reasons), message=o.message, at=min(o.seen_at, now))
                if status is not None:
                    statuses.append(status)
                outcomes.append(ObservationOutcome(o.printer, o.in_error, recorded))
            self.app.record(*statuses)
            return outcomes

        return retry_on_conflict(attempt, what="record printer states")

    def _status(self, name: str, create: bool) -> PrinterStatus | None:
        """The printer's status; a printer never seen in error has none (and gets one only when
        it is: a healthy printer reported at the service's start records nothing)."""
        sid = printer_status_id(self.app.server_id, name)
        try:
            return self.app.repository.get(sid)
        except AggregateNotFoundError:
            return PrinterStatus.register(sid, name) if create else None
