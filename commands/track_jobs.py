"""Track print jobs reported by an agent: validate, price, and record each as one event.

A batch is one transaction: all of it is recorded or none of it. Jobs whose key was recorded
before come back as duplicates and record nothing, so re-posting is safe.

Validation has two faces that accept exactly the same input (a test holds them together):
msgspec decodes and checks a good batch in C (~5 µs a job, the hot path), and the marshmallow
schema — the one the OpenAPI document is generated from — names every bad field when a batch
is refused (~100 µs a job, paid only on bad input).
"""
from __future__ import annotations

import json
import logging
import re
from functools import partial
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Callable, Literal, Mapping, Protocol, Sequence
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from commands.application import PageLedger
from commands.printers import PrinterCache
from commands.validation import InvalidRequest, flatten_messages
from domain.costs import CostSchedule, sheets_for
from domain.jobs import PrintJob, job_id
from domain.printers import Printer
from pageledger.codec import to_micros

log = logging.getLogger("pageledger.jobs")

PDLS = ("pdf", "postscript", "pcl5", "pclxl", "pwg-raster", "urf", "text", "unknown")
MAX_BATCH = 5000
MAX_ATTEMPTS = 5

_Text255 = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class JobReport(msgspec.Struct, frozen=True):
    """One job as the agent saw it on the print server."""

    job_key: _Text255
    user: _Text255
    printer: _Text255
    submitted_at: Annotated[datetime, msgspec.Meta(tz=True)]
    pages: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    client_host: Annotated[str, msgspec.Meta(max_length=255)] = ""
    document: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    copies: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    colour_pages: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    duplex: bool = False
    paper: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] = "unknown"
    size: Annotated[int, msgspec.Meta(ge=0, le=1 << 40)] = 0
    pdl: Literal["pdf", "postscript", "pcl5", "pclxl", "pwg-raster", "urf", "text", "unknown"] = "unknown"
    release_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None

    def __post_init__(self) -> None:
        if self.colour_pages > self.pages:
            raise ValueError("colour_pages cannot exceed pages")


class _Batch(msgspec.Struct):
    jobs: Annotated[list[JobReport], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class JobReportSchema(Schema):
    """The same rules as JobReport, for error messages and the OpenAPI document."""

    class Meta:
        unknown = EXCLUDE  # newer agents may send more fields

    job_key = fields.String(required=True, validate=validate.Length(1, 255))
    user = fields.String(required=True, validate=validate.Length(1, 255))
    printer = fields.String(required=True, validate=validate.Length(1, 255))
    client_host = fields.String(load_default="", validate=validate.Length(0, 255))
    document = fields.String(load_default="", validate=validate.Length(0, 1024))
    submitted_at = fields.AwareDateTime(required=True, metadata={"description": "ISO 8601 with offset"})
    pages = fields.Integer(required=True, strict=True, validate=validate.Range(0, 1_000_000),
                           metadata={"description": "impressions per copy, after N-up and page ranges"})
    copies = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 10_000))
    colour_pages = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1_000_000))
    duplex = fields.Boolean(load_default=False, truthy={True}, falsy={False})
    paper = fields.String(load_default="unknown", validate=validate.Length(1, 32))
    size = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, 1 << 40))
    pdl = fields.String(load_default="unknown", validate=validate.OneOf(PDLS))
    release_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))

    @validates_schema
    def _colour_within_pages(self, data: dict, **_: object) -> None:
        if data.get("colour_pages", 0) > data.get("pages", 0):
            raise ValidationError("cannot exceed pages", field_name="colour_pages")


class TrackJobsSchema(Schema):
    """A batch of jobs as posted to /Services/jobs."""

    class Meta:
        unknown = EXCLUDE

    jobs = fields.List(fields.Nested(JobReportSchema), required=True,
                       validate=validate.Length(min=1, max=MAX_BATCH))


_decoder = msgspec.json.Decoder(_Batch)
_PATH = re.compile(r"at `\$((?:\.\w+|\[\d+\])*)`")


def parse_batch(body: bytes) -> list[JobReport]:
    """Decode and validate a posted batch, or raise InvalidRequest naming every bad field."""
    try:
        return _decoder.decode(body).jobs
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        fast_error = str(exc)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest({"_body": [f"not valid JSON: {exc}"]}) from None
    try:
        TrackJobsSchema().load(data)
    except ValidationError as err:
        raise InvalidRequest(flatten_messages(err.messages)) from None
    # marshmallow accepted what msgspec refused: name the field msgspec pointed at.
    match = _PATH.search(fast_error)
    where = match.group(1).replace("[", ".").replace("]", "").lstrip(".") if match else "_schema"
    raise InvalidRequest({where or "_schema": [fast_error.split(" - at ")[0]]})


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


def track_jobs(app: PageLedger, reports: Sequence[JobReport], printers: PrinterCache,
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
        by_name, new_printers = printers.for_names({r.printer for r in reports})
        outcomes: list[TrackOutcome] = []
        events: list[PrintJob.Tracked | PrintJob.Denied] = []
        seen_in_batch: set[UUID] = set()
        for report, jid in zip(reports, ids):
            if jid in known or jid in seen_in_batch:
                outcomes.append(_duplicate(app, report, jid, seen_in_batch, by_name[report.printer.lower()]))
                continue
            seen_in_batch.add(jid)
            printer = by_name[report.printer.lower()]
            verdict = verdicts.get(report.user)
            if verdict is not None and not verdict.track:
                event = _tracked(jid, report, printer, denied=verdict.reason)
                events.append(event)
                outcomes.append(TrackOutcome(report.job_key, jid, "denied", "deny", event.sheets, event.cost,
                                             verdict.reason))
                continue
            event = _tracked(jid, report, printer)
            events.append(event)
            outcomes.append(TrackOutcome(report.job_key, jid, "tracked", _decision(printer), event.sheets, event.cost))
        try:
            app.record(*new_printers, events=events)
        except IntegrityError:
            # A re-post racing its original, or a printer registered meanwhile: find out
            # which, then decide again.
            printers.forget(new_printers)
            known = {jid for jid in ids if jid in app.repository}
            log.info("batch of %d jobs: %d already recorded, retrying (attempt %d)", len(reports), len(known), attempt)
            continue
        printers.registered(new_printers)
        tracked = len(events)
        log.debug("tracked %d jobs (%d duplicates ignored)", tracked, len(outcomes) - tracked)
        return outcomes
    raise RuntimeError(f"could not record a batch of {len(reports)} jobs after {MAX_ATTEMPTS} attempts")


def _tracked(jid: UUID, r: JobReport, printer: Printer, denied: str | None = None) -> PrintJob.Tracked:
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


def _duplicate(app: PageLedger, r: JobReport, jid: UUID, seen_in_batch: set[UUID], printer: Printer) -> TrackOutcome:
    """A job recorded before gets the answer it got then: a re-posted held job stays held."""
    if jid in seen_in_batch:
        return TrackOutcome(r.job_key, jid, "duplicate", _decision(printer), 0, 0, "job key repeated in this batch")
    job: PrintJob = app.repository.get(jid)
    decision = "deny" if job.state == "denied" else "hold" if job.state == "held" else _decision(printer)
    return TrackOutcome(r.job_key, jid, "duplicate", decision, job.sheets, job.cost, "already recorded")


def _decision(printer: Printer) -> str:
    return "hold" if printer.secure else "print"
