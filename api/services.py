"""/Services: the endpoints the client agent talks to (role "agent" only)."""
from __future__ import annotations

from datetime import datetime, timezone
import os
from typing import BinaryIO, Callable
from uuid import UUID

import falcon
from marshmallow import Schema, fields, validate

from adapters.spool import SpoolMismatch, SpoolTooLarge
from api.errors import load
from api.openapi import Operation
from commands.job_reports import NAME, TEXT, TrackJobsSchema, parse_batch
from commands.printer_status import PrinterObservation, RecordPrinterStates
from commands.jobs import HoldJob, TrackJobs, TrackOutcome, UnknownJob
from commands.validation import InvalidRequest
from domain.units import format_money, to_micros


def outcome_json(o: TrackOutcome) -> dict:
    return {"job_key": o.job_key, "job_id": str(o.job_id), "status": o.status, "decision": o.decision,
            "sheets": o.sheets, "cost": format_money(o.cost), "message": o.message, "fields": list(o.fields),
            # a generated release code, told once to the agent (which shows it in the CUPS job's state message)
            **({"release_code": o.release_code} if o.release_code else {})}


class JobsResource:
    roles = ("agent",)
    openapi = {"post": Operation("Track a batch of print jobs (agent). New jobs all or nothing; a re-post is a "
                                 "duplicate, or a conflict when its figures differ (recording nothing).",
                                 body=TrackJobsSchema, responses={200: "One result per job, in order"})}

    def __init__(self, track_jobs: TrackJobs, clock: Callable[[], int]) -> None:
        self.track_jobs = track_jobs
        self.clock = clock  # bounds submitted_at (one day ahead at most)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        outcomes = self.track_jobs(parse_batch(req.bounded_stream.read(), now=self.clock()))
        resp.media = {"results": [outcome_json(o) for o in outcomes]}


class PolicyResource:
    roles = ("agent",)
    openapi = {"get": Operation("What agents do while the server cannot be reached, and the server's time")}

    def __init__(self, offline_policy: str) -> None:
        self.offline_policy = offline_policy

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"offline": self.offline_policy, "server_time": datetime.now(timezone.utc).isoformat()}


DIGEST_HEADER = "X-Content-SHA256"
HEX = frozenset("0123456789abcdef")


class SpoolResource:
    """PUT /Services/jobs/{job_id}/spool: a held job's data, streamed (jobs reach 400 MB).

    The sender declares the data's SHA-256 (and, unless chunked, its length); anything else
    received, such as a body cut short by a closed connection, is refused and kept nowhere.
    """

    roles = ("agent",)
    openapi = {"put": Operation(f"Upload a held job's data (raw or chunked) with its SHA-256 in {DIGEST_HEADER}; "
                                "records the hold once the data received is the data declared",
                                body_content="application/octet-stream",
                                responses={201: "Held: the spool's SHA-256 and size",
                                           400: "Not holdable, or the data received is not the data declared "
                                                "(errors name Content-Length, X-Content-SHA256 or body)",
                                           404: "Unknown job", 413: "Too large (max_spool_mib)",
                                           428: f"No {DIGEST_HEADER} header"}),
               "get": Operation("The data of a released job, for the release service to print",
                                responses={200: "The held bytes (application/octet-stream)",
                                           400: "Unknown job, or not released"})}

    def __init__(self, hold_job: HoldJob, held_data: Callable[[UUID], tuple[BinaryIO, str]] | None = None) -> None:
        self.hold_job = hold_job
        self.held_data = held_data  # commands.release.HeldData

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        if self.held_data is None:
            raise falcon.HTTPMethodNotAllowed(["PUT"])
        try:
            jid = UUID(job_id)
        except ValueError:
            raise InvalidRequest({"job_id": ["not a job id"]}) from None
        stream, digest = self.held_data(jid)
        resp.content_type = "application/octet-stream"
        resp.set_header(DIGEST_HEADER, digest)
        resp.set_stream(stream, os.fstat(stream.fileno()).st_size)

    def on_put(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        try:
            jid = UUID(job_id)
        except ValueError:
            raise InvalidRequest({"job_id": ["not a job id"]}) from None
        sha256 = declared_sha256(req)
        # A chunked upload has no Content-Length: falcon's bounded stream would read nothing,
        # while the server's own input stream decodes the chunks up to their end.
        body = req.bounded_stream if req.content_length is not None else req.stream
        try:
            job = self.hold_job(jid, body, sha256=sha256, size=req.content_length)
        except UnknownJob:
            raise falcon.HTTPNotFound(title="Unknown job", description=f"no job {jid}") from None
        except SpoolTooLarge as exc:
            raise falcon.HTTPContentTooLarge(title="Too large", description=str(exc)) from None
        except SpoolMismatch as exc:
            raise InvalidRequest(exc.errors) from None
        resp.status = falcon.HTTP_201
        resp.media = {"job_id": str(jid), "state": job.state, "spool": job.spool, "size": job.spool_size}


def declared_sha256(req: falcon.Request) -> str:
    value = req.get_header(DIGEST_HEADER)
    if value is None:
        # An agent from before the header: 428, which it takes as "try again later", so CUPS
        # keeps the job until the agent is upgraded instead of cancelling it.
        raise falcon.HTTPPreconditionRequired(
            title="Digest required",
            description=f"send the data's SHA-256 (64 hex digits) in the {DIGEST_HEADER} header; "
                        "upgrade the agent if it does not")
    value = value.strip().lower()
    if len(value) != 64 or not HEX.issuperset(value):
        raise InvalidRequest({DIGEST_HEADER: ["not a SHA-256: 64 hex digits expected"]})
    return value


# --- printers' states (the release service) ---------------------------------------------------

MAX_PRINTERS_PER_REPORT = 500
MAX_REASONS = 32
KEYWORD = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"  # an IPP keyword (printer-state-reasons; vendors add dots)


class PrinterStateSchema(Schema):
    printer = fields.String(required=True, validate=[validate.Length(1, 255),
                                                     validate.Regexp(NAME, error="not a printer name")],
                            metadata={"description": "the CUPS queue"})
    state = fields.String(required=True, validate=validate.OneOf(("idle", "processing", "stopped", "unknown")),
                          metadata={"description": "printer-state"})
    reasons = fields.List(fields.String(validate=validate.Regexp(KEYWORD, error="not an IPP keyword")),
                          load_default=list, validate=validate.Length(0, MAX_REASONS),
                          metadata={"description": "printer-state-reasons; one ending in -error, or the state "
                                                   "stopped, is an error"})
    message = fields.String(load_default="", validate=[validate.Length(0, 1000),
                                                       validate.Regexp(TEXT, error="control characters")],
                            metadata={"description": "printer-state-message"})
    seen_at = fields.AwareDateTime(required=True, metadata={"description": "when the release service saw it "
                                                                           "(at most 30 days ago, 5 minutes ahead)"})


class PrinterStatesSchema(Schema):
    printers = fields.List(fields.Nested(PrinterStateSchema), required=True,
                           validate=validate.Length(1, MAX_PRINTERS_PER_REPORT))


class PrinterStateOutcomeSchema(Schema):
    printer = fields.String(required=True)
    in_error = fields.Boolean(required=True)
    recorded = fields.Boolean(required=True, metadata={"description": "false: no change from what was recorded"})


class PrinterStatesReplySchema(Schema):
    results = fields.List(fields.Nested(PrinterStateOutcomeSchema), required=True)


class PrinterStatesResource:
    """POST /Services/printer-states: printers whose state changed, as the release service saw
    them in CUPS. Changes only; the same state again records nothing."""

    roles = ("agent",)
    openapi = {"post": Operation("The release service reports printers whose CUPS state changed (in error: "
                                 "stopped, or an -error reason; or out of it)",
                                 body=PrinterStatesSchema, reply=PrinterStatesReplySchema,
                                 responses={200: "One result per printer, in order",
                                            400: "A bad field, named (nothing recorded)"})}

    def __init__(self, record_printer_states: RecordPrinterStates) -> None:
        self.record_printer_states = record_printer_states

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(PrinterStatesSchema(), req.get_media(default_when_empty={}) or {})
        outcomes = self.record_printer_states([
            PrinterObservation(p["printer"], p["state"], tuple(p["reasons"]), p["message"], to_micros(p["seen_at"]))
            for p in data["printers"]])
        resp.media = {"results": [{"printer": o.printer, "in_error": o.in_error, "recorded": o.recorded}
                                  for o in outcomes]}
