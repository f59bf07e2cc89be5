"""Track print jobs reported by an agent: validate, price, and record each as one event.

A batch is one transaction (one `save`): all of it is recorded or none of it. Jobs whose key
was recorded before come back as duplicates and record nothing, so re-posting is safe.
"""
from __future__ import annotations

import logging
from functools import partial
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Protocol, Sequence
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from commands.application import PageLedger
from domain.costs import CostSchedule, sheets_for
from domain.jobs import PrintJob, job_id
from domain.printers import Printer, printer_id
from pageledger.codec import to_micros

log = logging.getLogger("pageledger.jobs")

PDLS = ("pdf", "postscript", "pcl5", "pclxl", "pwg-raster", "urf", "text", "unknown")
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class JobReport:
    """One job as the agent saw it on the print server."""

    job_key: str
    user: str
    printer: str
    client_host: str
    document: str
    submitted_at: datetime
    pages: int
    copies: int
    colour_pages: int
    duplex: bool
    paper: str
    size: int
    pdl: str
    release_code: str | None = None


class JobReportSchema(Schema):
    job_key = fields.String(required=True, validate=validate.Length(1, 255))
    user = fields.String(required=True, validate=validate.Length(1, 255))
    printer = fields.String(required=True, validate=validate.Length(1, 255))
    client_host = fields.String(load_default="", validate=validate.Length(0, 255))
    document = fields.String(load_default="", validate=validate.Length(0, 1024))
    submitted_at = fields.AwareDateTime(required=True)
    pages = fields.Integer(required=True, strict=True, validate=validate.Range(0, 1_000_000))
    copies = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 10_000))
    colour_pages = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1_000_000))
    duplex = fields.Boolean(load_default=False)
    paper = fields.String(load_default="unknown", validate=validate.Length(1, 32))
    size = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1 << 40))
    pdl = fields.String(load_default="unknown", validate=validate.OneOf(PDLS))
    release_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))

    @validates_schema
    def _colour_within_pages(self, data: dict, **_: object) -> None:
        if data.get("colour_pages", 0) > data.get("pages", 0):
            raise ValidationError("cannot exceed pages", field_name="colour_pages")

    @post_load
    def _make(self, data: dict, **_: object) -> JobReport:
        return JobReport(**data)


class TrackJobsSchema(Schema):
    """A batch of jobs as posted to /Services/jobs."""

    jobs = fields.List(fields.Nested(JobReportSchema), required=True,
                       validate=validate.Length(min=1, max=5000))


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
    """What a seat gate says about one user's job (commands.licensing.JobGate)."""

    track: bool
    reason: str


def track_jobs(app: PageLedger, reports: Sequence[JobReport], default_schedule: CostSchedule,
               gate: Callable[[list[str]], Mapping[str, Verdict]] | None = None) -> list[TrackOutcome]:
    """Record a batch of jobs atomically; jobs seen before are answered as duplicates.

    `gate` (the licence seat check, commands.licensing) is asked once for the users of the
    batch; a job it refuses is recorded as PrintJob.Denied instead of Tracked and answered
    with decision "deny".
    """
    ids = [job_id(app.server_id, r.job_key) for r in reports]
    verdicts: Mapping[str, Verdict] = gate(list(dict.fromkeys(r.user for r in reports))) if gate else {}
    known: set[UUID] = set()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        printers, new_printers = _printers_for(app, reports, default_schedule)
        outcomes: list[TrackOutcome] = []
        new_jobs: list[PrintJob] = []
        seen_in_batch: set[UUID] = set()
        for report, jid in zip(reports, ids):
            if jid in known or jid in seen_in_batch:
                outcomes.append(_duplicate(app, report, jid, seen_in_batch))
                continue
            seen_in_batch.add(jid)
            printer = printers[report.printer.lower()]
            verdict = verdicts.get(report.user)
            if verdict is not None and not verdict.track:
                job = _track_one(jid, report, printer, denied=verdict.reason)
                new_jobs.append(job)
                outcomes.append(TrackOutcome(report.job_key, jid, "denied", "deny", job.sheets, job.cost,
                                             verdict.reason))
                continue
            job = _track_one(jid, report, printer)
            new_jobs.append(job)
            outcomes.append(TrackOutcome(report.job_key, jid, "tracked", _decision(printer), job.sheets, job.cost))
        try:
            if new_jobs or new_printers:
                app.save(*new_printers, *new_jobs)
        except IntegrityError:
            # Someone recorded one of these jobs (a re-post racing its original) or registered
            # one of these printers meanwhile: find out which, then decide again.
            known = {jid for jid in ids if jid in app.repository}
            log.info("batch of %d jobs: %d already recorded, retrying (attempt %d)", len(reports), len(known), attempt)
            continue
        tracked = sum(o.status == "tracked" for o in outcomes)
        log.info("tracked %d jobs (%d duplicates ignored)", tracked, len(outcomes) - tracked)
        return outcomes
    raise RuntimeError(f"could not record a batch of {len(reports)} jobs after {MAX_ATTEMPTS} attempts")


def _track_one(jid: UUID, r: JobReport, printer: Printer, denied: str | None = None) -> PrintJob:
    schedule = printer.schedule
    record = PrintJob.track if denied is None else partial(PrintJob.deny, reason=denied)
    return record(
        jid, user=r.user, printer=printer.name, client_host=r.client_host,
        submitted_at=to_micros(r.submitted_at), pages=r.pages, copies=r.copies,
        sheets=sheets_for(pages=r.pages, copies=r.copies, duplex=r.duplex),
        colour_pages=r.colour_pages, duplex=r.duplex, paper=r.paper, size=r.size, pdl=r.pdl,
        cost=schedule.price(pages=r.pages, colour_pages=r.colour_pages, copies=r.copies,
                            duplex=r.duplex, paper=r.paper),
        schedule=printer.schedule_version, document=r.document,
    )


def _printers_for(app: PageLedger, reports: Sequence[JobReport],
                  default_schedule: CostSchedule) -> tuple[dict[str, Printer], list[Printer]]:
    """The printers of a batch, registering (with the default schedule) those never seen."""
    printers: dict[str, Printer] = {}
    new: list[Printer] = []
    for name in {r.printer for r in reports}:
        key = name.lower()
        if key in printers:
            continue
        pid = printer_id(app.server_id, name)
        if pid in app.repository:
            printers[key] = app.repository.get(pid)
        else:
            printers[key] = Printer.register(pid, name, default_schedule)
            new.append(printers[key])
    return printers, new


def _duplicate(app: PageLedger, r: JobReport, jid: UUID, seen_in_batch: set[UUID]) -> TrackOutcome:
    if jid in seen_in_batch:
        return TrackOutcome(r.job_key, jid, "duplicate", "print", 0, 0, "job key repeated in this batch")
    job: PrintJob = app.repository.get(jid)
    decision = "deny" if job.state == "denied" else "print"
    return TrackOutcome(r.job_key, jid, "duplicate", decision, job.sheets, job.cost, "already recorded")


def _decision(printer: Printer) -> str:
    return "hold" if printer.secure else "print"
