"""Secure release over HTTP: users list, release and delete their held jobs (JSON; the console's
Secure Print and the phone's /release page are in api/console); the release service takes its
orders and reports what printed; admins set a queue's release settings. A user never sees
another user's job: a job of someone else is answered as an unknown one.
"""
from __future__ import annotations

import time
from uuid import UUID
from typing import Any, Callable

import falcon
import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.errors import load
from api.openapi import Operation
from commands.job_reports import NAME
from commands.printers import ReleaseSettings, SetReleaseSettings
from commands.release import (MAX_JOBS, Caller, CodeThrottled, DeleteJobs, RecordReleaseOutcome, ReleaseJobs)
from commands.validation import InvalidRequest
from domain.printers import CODE_MODES, MAX_HOLD_SECONDS, RELEASE_SUFFIX, Printer, release_queue_name
from domain.units import format_money, from_micros
from projections.held_jobs import HeldJob, release_orders, waiting_jobs

MAX_WAIT_SECONDS = 1.0  # an idle release service asks again each second; an order ends the wait at once
ORDER_POLL_SECONDS = 0.02
_JobIds = fields.List(fields.String(validate=validate.Length(1, 64)), validate=validate.Length(1, MAX_JOBS))


def _caller(req: falcon.Request, address: str = "") -> Caller:
    p = req.context.principal
    return Caller(p.subject or p.name, admin=p.role == "admin", address=address or req.remote_addr or "")


caller_of = _caller


def held_jobs_of(reader: sa.Engine, caller: Caller, *, printer: str | None = None, limit: int = 1000) -> list[HeldJob]:
    """The caller's waiting held jobs, oldest first: an admin's are everyone's, a user's their own
    (the JSON API, the /release page and the console's Secure Print page all list them so)."""
    with reader.connect() as conn:
        return waiting_jobs(conn, None if caller.admin else caller.login, printer=printer, limit=limit)


def release_or_delete(release_jobs: ReleaseJobs, delete_jobs: DeleteJobs, action: str, ids: list[str],
                      caller: Caller, printer: str | None, code: str | None) -> str:
    """A release form's action (the /release page, the console's Secure Print): what was done, or
    InvalidRequest naming the field (CodeThrottled becomes 429)."""
    if action == "release":
        done = release(release_jobs, ids, caller, printer, code)
        return f"{len(done)} job(s) released: collect them at the printer."
    if action == "delete":
        return f"{len([j for j in delete_jobs(ids, caller)])} job(s) deleted."
    raise InvalidRequest({"action": ["release or delete"]})


def held_job_json(j: HeldJob) -> dict[str, Any]:
    return {"job_id": j.job_id, "job": j.number, "user": j.user, "printer": j.printer, "document": j.document,
            "submitted_at": from_micros(j.submitted_at).isoformat(), "expires_at": from_micros(j.expires_at).isoformat(),
            "pages": j.pages, "copies": j.copies, "sheets": j.sheets, "cost": format_money(j.cost),
            "state": j.status, "ready": j.has_data, "reason": j.reason}


class HeldJobSchema(Schema):
    job_id = fields.String(required=True)
    job = fields.Integer(required=True, metadata={"description": "the job's number in /api/v1/jobs"})
    user = fields.String(required=True)
    printer = fields.String(required=True)
    document = fields.String(required=True)
    submitted_at = fields.String(required=True)
    expires_at = fields.String(required=True)
    pages = fields.Integer(required=True)
    copies = fields.Integer(required=True)
    sheets = fields.Integer(required=True)
    cost = fields.String(required=True, metadata={"description": "what it costs if printed on its own queue"})
    state = fields.String(required=True, validate=validate.OneOf(("held", "failed")))
    ready = fields.Boolean(required=True, metadata={"description": "its data has reached the server"})
    reason = fields.String(required=True, metadata={"description": "why the last release did not print"})


class HeldJobsReplySchema(Schema):
    jobs = fields.List(fields.Nested(HeldJobSchema), required=True)


class HeldJobsQuerySchema(Schema):
    printer = fields.String(validate=[validate.Length(1, 255), validate.Regexp(NAME, error="not a printer name")])


class _Selection(Schema):
    """Which jobs: named ones, or all of the caller's waiting jobs (at `printer`'s queue)."""

    jobs = _JobIds
    all = fields.Boolean(load_default=False)

    @validates_schema
    def _one_of(self, data: dict, **_: object) -> None:
        if bool(data.get("jobs")) == bool(data.get("all")):
            raise ValidationError("name the jobs, or send all: true", "jobs")


class ReleaseBodySchema(_Selection):
    printer = fields.String(validate=[validate.Length(1, 255), validate.Regexp(NAME, error="not a printer name")],
                            metadata={"description": "where to print (default: the job's own queue; another "
                                                     "printer of its group for pull printing)"})
    code = fields.String(validate=validate.Length(1, 64), metadata={"description": "the release code"})


class DeleteBodySchema(_Selection):
    pass


class SelectionReplySchema(Schema):
    jobs = fields.List(fields.String(), required=True)


class _Jobs:
    def __init__(self, reader: sa.Engine) -> None:
        self.reader = reader

    def selected(self, req: falcon.Request, data: dict, printer: str | None = None) -> list[str]:
        if data.get("jobs"):
            return list(data["jobs"])
        ids = [j.job_id for j in held_jobs_of(self.reader, _caller(req), printer=printer, limit=MAX_JOBS)]
        if not ids:
            raise InvalidRequest({"jobs": ["you have no held jobs" + (f" on {printer}" if printer else "")]})
        return ids


class HeldJobsResource(_Jobs):
    roles = ("admin", "user")
    openapi = {"get": Operation("Held jobs waiting for release, oldest first (users: their own only)",
                                query=HeldJobsQuerySchema, reply=HeldJobsReplySchema,
                                responses={200: "The waiting jobs"})}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(HeldJobsQuerySchema(), dict(req.params))
        rows = held_jobs_of(self.reader, _caller(req), printer=q.get("printer"))
        resp.media = {"jobs": [held_job_json(j) for j in rows]}


class ReleaseRequestResource(_Jobs):
    roles = ("admin", "user")
    openapi = {"post": Operation("Release held jobs (one, several or all) at their queue or a printer of its group",
                                 body=ReleaseBodySchema, reply=SelectionReplySchema,
                                 responses={200: "Released: the release service prints them now",
                                            400: "An unknown job (or another user's), one already released, a "
                                                 "printer outside the group, a wrong or missing code",
                                            429: "Too many wrong codes (Retry-After)"})}

    def __init__(self, reader: sa.Engine, release_jobs: ReleaseJobs) -> None:
        super().__init__(reader)
        self.release_jobs = release_jobs

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(ReleaseBodySchema(), req.get_media(default_when_empty={}) or {})
        ids = self.selected(req, data)
        resp.media = {"jobs": release(self.release_jobs, ids, _caller(req), data.get("printer"), data.get("code"))}


def release(release_jobs: ReleaseJobs, ids: list[str], caller: Caller, printer: str | None,
            code: str | None) -> list[str]:
    try:
        return [str(j.id) for j in release_jobs(ids, caller, printer=printer, code=code)]
    except CodeThrottled as exc:
        raise falcon.HTTPTooManyRequests(title="Too many wrong release codes", description=str(exc),
                                         retry_after=exc.retry_after) from None


class DeleteRequestResource(_Jobs):
    roles = ("admin", "user")
    openapi = {"post": Operation("Delete held jobs (their owner, or an admin); their data is removed",
                                 body=DeleteBodySchema, reply=SelectionReplySchema,
                                 responses={200: "Deleted", 400: "An unknown job (or another user's), or one "
                                                                 "no longer waiting"})}

    def __init__(self, reader: sa.Engine, delete_jobs: DeleteJobs) -> None:
        super().__init__(reader)
        self.delete_jobs = delete_jobs

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(DeleteBodySchema(), req.get_media(default_when_empty={}) or {})
        jobs = self.delete_jobs(self.selected(req, data), _caller(req))
        resp.media = {"jobs": [str(j.id) for j in jobs]}


# --- the release service (agent token) ------------------------------------------------------

# A print server's release queues per request. The release service groups them so that each
# request line stays under gunicorn's 4 KB limit (agent.release_service); this bounds any client.
MAX_RELEASE_QUEUES = 64
MAX_QUEUE_NAME = 127  # CUPS's own limit on a queue name


class OrdersQuerySchema(Schema):
    wait = fields.Float(load_default=0.0, validate=validate.Range(0, MAX_WAIT_SECONDS),
                        metadata={"description": "seconds to wait for an order when there is none (long poll)"})
    queue = fields.List(
        fields.String(validate=[validate.Length(1, MAX_QUEUE_NAME), validate.Regexp(NAME, error="not a queue name"),
                                validate.Regexp(rf"(?i).+{RELEASE_SUFFIX}\Z", error="not a release queue")]),
        validate=validate.Length(1, MAX_RELEASE_QUEUES),
        metadata={"description": "the release queues this release service serves (repeat: queue=a-release&"
                                 "queue=b-release): only their orders are answered; none named: every order"})


class OrderSchema(Schema):
    job_id = fields.String(required=True)
    released_at = fields.Integer(required=True, metadata={"description": "µs; with job_id, names this release"})
    printer = fields.String(required=True)
    release_queue = fields.String(required=True)
    user = fields.String(required=True)
    title = fields.String(required=True)
    spool = fields.String(required=True, metadata={"description": "SHA-256 of the data"})
    size = fields.Integer(required=True)


class OrdersReplySchema(Schema):
    orders = fields.List(fields.Nested(OrderSchema), required=True)


class ReleaseOrdersResource:
    """GET /Services/releases: the released jobs to print, oldest first (long-polled); with
    ``queue=...``, only those that go to the release queues named (each print server's release
    service names its own, so that two print servers never take each other's orders)."""

    roles = ("agent",)
    openapi = {"get": Operation("Released jobs for the release service to print (long poll with wait)",
                                query=OrdersQuerySchema, reply=OrdersReplySchema,
                                responses={200: "The orders", 400: "A bad wait or queue list (the field is named)"})}

    def __init__(self, reader: sa.Engine, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.monotonic = monotonic

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = dict(req.params)
        if isinstance(params.get("queue"), str):
            params["queue"] = [params["queue"]]
        query = load(OrdersQuerySchema(), params)
        printers = [q[:-len(RELEASE_SUFFIX)] for q in query["queue"]] if "queue" in query else None
        deadline = self.monotonic() + query["wait"]
        while True:
            with self.reader.connect() as conn:
                orders = release_orders(conn, printers=printers)
            if orders or self.monotonic() >= deadline:
                break
            time.sleep(ORDER_POLL_SECONDS)
        resp.media = {"orders": [order_json(o) for o in orders]}


def order_json(o: HeldJob) -> dict[str, Any]:
    where = o.released_to or o.printer
    return {"job_id": o.job_id, "released_at": _released_at(o), "printer": where,
            "release_queue": release_queue_name(where), "user": o.user, "title": o.document, "spool": o.spool,
            "size": o.size}


def _released_at(o: HeldJob) -> int:
    return o.changed_at


class OutcomeSchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(("printed", "held", "failed")),
                            metadata={"description": "printed: CUPS completed it; held: not printed, the job waits "
                                                     "again (printer stopped...); failed: it cannot be printed"})
    why = fields.String(load_default="", validate=validate.Length(0, 1000))
    cups_job = fields.String(load_default="", validate=validate.Length(0, 200),
                             metadata={"description": "server/queue/job-id@time-at-creation"})


class ReleaseOutcomeResource:
    """POST /Services/jobs/{job_id}/release-outcome: what became of a released job."""

    roles = ("agent",)
    openapi = {"post": Operation("The release service reports a released job printed, held again or failed",
                                 body=OutcomeSchema, responses={200: "Recorded (a repeated report is a no-op)",
                                                                400: "Unknown job, or not released"})}

    def __init__(self, outcome: RecordReleaseOutcome) -> None:
        self.outcome = outcome

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        try:
            jid = UUID(job_id)
        except ValueError:
            raise InvalidRequest({"job_id": ["not a job id"]}) from None
        data = load(OutcomeSchema(), req.get_media(default_when_empty={}) or {})
        if data["outcome"] == "printed":
            job = self.outcome.printed(jid, cups_job=data["cups_job"])
        else:
            job = self.outcome.failed(jid, why=data["why"], held=data["outcome"] == "held")
        resp.media = {"job_id": str(jid), "state": job.state}


# --- queue settings (admins) ------------------------------------------------------------------

class CardReaderSchema(Schema):
    host = fields.String(required=True, validate=[validate.Length(1, 255), validate.Regexp(r"^[A-Za-z0-9.:\-\[\]]+\Z")])
    port = fields.Integer(required=True, validate=validate.Range(1, 65535))
    format = fields.String(load_default="dec", validate=validate.OneOf(("dec", "hex", "wiegand26")))
    reverse_bytes = fields.Boolean(load_default=False)
    regex = fields.String(load_default="", validate=validate.Length(0, 200))
    strip_prefix = fields.String(load_default="", validate=validate.Length(0, 32))
    strip_suffix = fields.String(load_default="", validate=validate.Length(0, 32))
    output = fields.String(load_default="dec", validate=validate.OneOf(("dec", "hex")))


class ReleaseSettingsSchema(Schema):
    hold_seconds = fields.Integer(validate=validate.Range(60, MAX_HOLD_SECONDS))
    code_mode = fields.String(validate=validate.OneOf(CODE_MODES))
    code_length = fields.Integer(validate=validate.Range(4, 12))
    group = fields.String(validate=[validate.Length(0, 64), validate.Regexp(r"^[^\x00-\x1f\x7f]*\Z")])
    card_reader = fields.Nested(CardReaderSchema, allow_none=True)


def release_settings(body: Any) -> ReleaseSettings:
    """The release settings a request asks for (ReleaseSettingsSchema; InvalidInput names each bad
    field): what PUT /api/v1/printers/{name}/release and the console's Printers page pass to
    SetReleaseSettings. A card reader of null (or {}) removes the reader; an absent one keeps it."""
    data = load(ReleaseSettingsSchema(), body)
    reader = data.get("card_reader", ...)
    return ReleaseSettings(hold_seconds=data.get("hold_seconds"), code_mode=data.get("code_mode"),
                           code_length=data.get("code_length"), group=data.get("group"),
                           card_reader=None if reader is ... else (reader or {}))


def release_settings_json(p: Printer) -> dict[str, Any]:
    return {"hold_seconds": p.hold_seconds, "code_mode": p.code_mode, "code_length": p.code_length,
            "group": p.group, "card_reader": p.card_reader or None}


class PrinterReleaseResource:
    """PUT /api/v1/printers/{name}/release: a secure queue's hold time, code mode, group, card reader."""

    roles = ("admin",)
    openapi = {"put": Operation("Change a secure queue's release settings (each change is an event)",
                                body=ReleaseSettingsSchema, reply=ReleaseSettingsSchema,
                                responses={200: "The settings now in force"})}

    def __init__(self, set_release_settings: SetReleaseSettings) -> None:
        self.set_release_settings = set_release_settings

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if not 1 <= len(name) <= 255 or any(not c.isprintable() for c in name):
            raise InvalidRequest({"name": ["not a printer name"]})
        p = self.set_release_settings(name, release_settings(req.get_media(default_when_empty={}) or {}),
                                      by=req.context.principal.author)
        resp.media = release_settings_json(p)


# --- card readers (the release service, agent token) ------------------------------------------

class CardReaderListSchema(Schema):
    readers = fields.List(fields.Dict(), required=True, metadata={
        "description": "printer, host, port and the reader's normalisation (format, reverse_bytes, regex, "
                       "strip_prefix, strip_suffix, output)"})


class CardReadersResource:
    """GET /Services/card-readers: which readers the release service connects to."""

    roles = ("agent",)
    openapi = {"get": Operation("The card readers of the secure queues", reply=CardReaderListSchema,
                                responses={200: "The readers"})}

    def __init__(self, card_readers: Callable[[], list[dict]]) -> None:
        self.card_readers = card_readers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"readers": self.card_readers()}


class SwipeSchema(Schema):
    printer = fields.String(required=True, validate=[validate.Length(1, 255),
                                                     validate.Regexp(NAME, error="not a printer name")])
    card = fields.String(load_default="", validate=[validate.Length(0, 64),
                                                    validate.Regexp(r"^[0-9A-Za-z]*\Z", error="not a card number")])
    problem = fields.String(load_default="", validate=validate.Length(0, 200),
                            metadata={"description": "why the reader's line held no card number"})


class SwipeReplySchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(("released", "unknown card", "nothing to release")))
    jobs = fields.List(fields.String(), required=True)


class CardSwipeResource:
    """POST /Services/card-swipes: a card was swiped at a secure queue's reader."""

    roles = ("agent",)
    openapi = {"post": Operation("A card swiped at a reader: releases all its holder's jobs on that queue",
                                 body=SwipeSchema, reply=SwipeReplySchema,
                                 responses={200: "Released, or recorded as an unknown card / nothing to release",
                                            400: "An empty or garbage card line (recorded), or not a secure queue"})}

    def __init__(self, swipe_card: Callable[..., Any]) -> None:
        self.swipe_card = swipe_card

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(SwipeSchema(), req.get_media(default_when_empty={}) or {})
        outcome = self.swipe_card(data["printer"], data["card"], data["problem"])
        resp.media = {"outcome": outcome.outcome, "jobs": list(outcome.jobs)}
