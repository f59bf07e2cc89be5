"""Print jobs: track what agents report (one event a job, priced at once), hold a secure
queue's job until its owner releases it. The one module that writes PrintJob aggregates.

A batch is one transaction: all of it is recorded or none of it. Jobs whose key was recorded
before come back as duplicates and record nothing, so re-posting is safe.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, Callable, Mapping, Protocol, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from commands.job_reports import JobReport
from commands.ports import SpoolWriter
from commands.printers import PrinterCache
from commands.validation import InvalidRequest
from domain.costs import sheets_for
from domain.jobs import JobNotHoldable, PrintJob, job_id
from domain.printers import Printer, printer_id
from domain.units import to_micros

log = logging.getLogger("pageledger.jobs")


@dataclass(frozen=True)
class TrackOutcome:
    job_key: str
    job_id: UUID
    status: str  # "tracked" | "duplicate" | "denied"
    decision: str  # "print" | "hold" | "deny"
    sheets: int
    cost: int  # 1/10,000 currency unit
    message: str = ""


class Verdict(Protocol):
    """What the seat gate says about one user's jobs (commands.licensing.JobGate)."""

    track: bool
    reason: str


SeatGate = Callable[[list[str]], Mapping[str, Verdict]]


class TrackJobs:
    """Record a batch of jobs atomically; jobs seen before are answered as duplicates.

    `gate` (the licence seat check, commands.licensing.Licensing.gate_jobs) is asked once for
    the users of the batch; a job it refuses is recorded as PrintJob.Denied instead of Tracked
    and answered with decision "deny".
    """

    def __init__(self, app: PageLedger, printers: PrinterCache, gate: SeatGate | None = None) -> None:
        self.app = app
        self.printers = printers
        self.gate = gate

    def __call__(self, reports: Sequence[JobReport]) -> list[TrackOutcome]:
        app = self.app
        ids = [job_id(app.server_id, r.job_key) for r in reports]
        verdicts: Mapping[str, Verdict] = self.gate(list(dict.fromkeys(r.user for r in reports))) if self.gate else {}
        known: set[UUID] = set()
        new_printers: list[Printer] = []

        def attempt() -> list[TrackOutcome]:
            nonlocal new_printers
            by_name, new_printers = self.printers.for_names({r.printer for r in reports})
            outcomes: list[TrackOutcome] = []
            events: list[PrintJob.Tracked | PrintJob.Denied] = []
            seen_in_batch: set[UUID] = set()
            for report, jid in zip(reports, ids):
                printer = by_name[report.printer.lower()]
                if jid in known or jid in seen_in_batch:
                    outcomes.append(self._duplicate(report, jid, seen_in_batch, printer))
                    continue
                seen_in_batch.add(jid)
                verdict = verdicts.get(report.user)
                if verdict is not None and not verdict.track:
                    event = _recorded(jid, report, printer, denied=verdict.reason)
                    events.append(event)
                    outcomes.append(TrackOutcome(report.job_key, jid, "denied", "deny", event.sheets, event.cost,
                                                 verdict.reason))
                    continue
                event = _recorded(jid, report, printer)
                events.append(event)
                outcomes.append(TrackOutcome(report.job_key, jid, "tracked", _decision(printer), event.sheets,
                                             event.cost))
            app.record(*new_printers, events=events)
            self.printers.registered(new_printers)
            log.debug("tracked %d jobs (%d duplicates ignored)", len(events), len(outcomes) - len(events))
            return outcomes

        def conflicted() -> None:
            # A re-post racing its original, or a printer registered meanwhile: find out which.
            nonlocal known
            self.printers.forget(new_printers)
            known = {jid for jid in ids if jid in app.repository}
            log.info("batch of %d jobs: %d already recorded, deciding again", len(reports), len(known))

        return retry_on_conflict(attempt, what=f"record a batch of {len(reports)} jobs", on_conflict=conflicted)

    def _duplicate(self, r: JobReport, jid: UUID, seen_in_batch: set[UUID], printer: Printer) -> TrackOutcome:
        """A job recorded before gets the answer it got then: a re-posted held job stays held."""
        if jid in seen_in_batch:
            return TrackOutcome(r.job_key, jid, "duplicate", _decision(printer), 0, 0, "job key repeated in this batch")
        job: PrintJob = self.app.repository.get(jid)
        decision = "deny" if job.state == "denied" else "hold" if job.state == "held" else _decision(printer)
        return TrackOutcome(r.job_key, jid, "duplicate", decision, job.sheets, job.cost, "already recorded")


def _recorded(jid: UUID, r: JobReport, printer: Printer, denied: str | None = None) -> PrintJob.Tracked:
    record = PrintJob.tracked if denied is None else partial(PrintJob.denied, reason=denied)
    return record(
        jid, user=r.user, printer=printer.name, client_host=r.client_host,
        submitted_at=to_micros(r.submitted_at), pages=r.pages, copies=r.copies,
        sheets=sheets_for(pages=r.pages, copies=r.copies, duplex=r.duplex),
        colour_pages=r.colour_pages, duplex=r.duplex, paper=r.paper, size=r.size, pdl=r.pdl,
        cost=printer.schedule.price(pages=r.pages, colour_pages=r.colour_pages, copies=r.copies,
                                    duplex=r.duplex, paper=r.paper),
        schedule=printer.schedule_version, document=r.document,
    )


def _decision(printer: Printer) -> str:
    return "hold" if printer.secure else "print"


class UnknownJob(LookupError):
    pass


class HoldJob:
    """Hold a job on a secure queue: its data goes to the spool store until its owner releases it.

    Checks that the job can be held, stores its data, then records the hold. Uploading the
    same data again is a no-op (an agent retrying); only tracked jobs on secure queues can be
    held.
    """

    def __init__(self, app: PageLedger, spool: SpoolWriter) -> None:
        self.app = app
        self.spool = spool

    def __call__(self, job_id: UUID, data: BinaryIO) -> PrintJob:
        app = self.app
        try:
            job: PrintJob = app.repository.get(job_id)
        except AggregateNotFoundError:
            raise UnknownJob(f"no job {job_id}") from None
        printer: Printer = app.repository.get(printer_id(app.server_id, job.printer))
        if not printer.secure:
            raise InvalidRequest({"job_id": [f"printer {job.printer} is not a secure queue: the job is not held"]})
        if job.state not in ("tracked", "held"):
            raise InvalidRequest({"job_id": [f"a {job.state} job cannot be held"]})
        spool, size = self.spool.write(data)
        if job.state == "held":
            if job.spool != spool:
                raise InvalidRequest({"job_id": ["the job is already held with other data"]})
            return job
        try:
            job.hold(spool, size)
        except JobNotHoldable as exc:
            raise InvalidRequest({"job_id": [str(exc)]}) from None
        app.save(job)
        return job
