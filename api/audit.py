"""The audit API: the event history, a job's history, usage as of an instant, the admin-change
log, and a person's own jobs as CSV (GDPR art. 15). See docs/audit-privacy.md."""
from __future__ import annotations

import csv
import io
import re
from typing import Any, Callable, Iterator

import falcon
import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.background_runs import RunStateSchema
from api.errors import InvalidInput, load
from api.openapi import Operation
from api.report_catalogue import ReportQuerySchema, ReportReplySchema, report_parameters
from api.reports import MAX_JOB_NUMBER, usage_json
from commands.job_reports import NAME
from domain.units import day_iso, format_money, from_micros, iso, to_micros
from projections.admin_changes import AREAS
from projections.audit import Audit
from projections.erasure import UnknownPerson
from projections.event_history import EventFilter, EventHistory, HistoryEvent, known_topic
from projections.jobs import JobFilter, list_jobs
from projections.report_formats import MEDIA_TYPES, render, report_json
from projections.usage_daily import GROUPS

AUDIT_ROLES = ("admin", "auditor")
MAX_TYPES = 20
_JOB_NUMBER = re.compile(r"[0-9]{1,19}")


class _Period(Schema):
    since = fields.AwareDateTime(data_key="from", metadata={"description": "recorded at or after; ISO 8601 "
                                                                          "with offset"})
    until = fields.AwareDateTime(data_key="to", metadata={"description": "recorded before; ISO 8601 with offset"})

    @validates_schema
    def _ordered(self, data: dict, **_: object) -> None:
        for name, key in (("since", "from"), ("until", "to")):
            if name in data and not 1970 <= data[name].year <= 9999:
                raise ValidationError({key: ["must lie between 1970 and 9999"]})
        if "since" in data and "until" in data and data["until"] <= data["since"]:
            raise ValidationError({"to": ["must be after from"]})


class EventQuerySchema(_Period):
    cursor = fields.Integer(load_default=0, validate=validate.Range(0, MAX_JOB_NUMBER),
                            metadata={"description": "next_cursor of the page before (a notification id)"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    type = fields.String(validate=validate.Length(1, 2000), metadata={
        "description": "event types, comma-separated, e.g. PrintJob.Tracked,SiteSettings.FieldChanged"})
    aggregate = fields.UUID(metadata={"description": "the id of one aggregate (a job, a user, a printer...)"})

    @validates_schema
    def _types(self, data: dict, **_: object) -> None:
        if "type" in data:
            names = [t.strip() for t in data["type"].split(",")]
            if len(names) > MAX_TYPES:
                raise ValidationError({"type": [f"at most {MAX_TYPES} types"]})
            unknown = [n for n in names if not n or not known_topic(n)]
            if unknown:
                raise ValidationError({"type": [f"unknown event type {n[:64]!r}" for n in unknown[:5]]})


class HistoryEventSchema(Schema):
    position = fields.Integer(required=True, metadata={"description": "notification id: the event's place in the log"})
    aggregate = fields.String(required=True)
    version = fields.Integer(required=True)
    type = fields.String(required=True)
    recorded_at = fields.String(required=True, allow_none=True)
    fields_ = fields.Dict(data_key="fields", required=True, metadata={
        "description": "the event's own fields by name; secrets show as [redacted]"})


class EventPageSchema(Schema):
    events = fields.List(fields.Nested(HistoryEventSchema), required=True)
    next_cursor = fields.Integer(required=True, allow_none=True, metadata={
        "description": "where the next page starts; null at the head of the log"})


class JobHistorySchema(Schema):
    job = fields.Integer(required=True)
    events = fields.List(fields.Nested(HistoryEventSchema), required=True)


class AsOfQuerySchema(Schema):
    at = fields.AwareDateTime(required=True, metadata={"description": "the instant, ISO 8601 with offset"})
    report = fields.String(load_default="usage", validate=validate.OneOf(("usage",)))
    group_by = fields.String(load_default="user", validate=validate.OneOf(GROUPS))

    @validates_schema
    def _range(self, data: dict, **_: object) -> None:
        if "at" in data and not 1970 <= data["at"].year <= 9999:
            raise ValidationError({"at": ["must lie between 1970 and 9999"]})


class AsOfTotalSchema(Schema):
    user = fields.String()
    printer = fields.String()
    day = fields.String()
    jobs = fields.Integer(required=True)
    impressions = fields.Integer(required=True, metadata={"description": "impressions, all copies"})
    sheets = fields.Integer(required=True)
    colour_impressions = fields.Integer(required=True, metadata={"description": "colour impressions, all copies"})
    mono_impressions = fields.Integer(required=True)
    cost = fields.String(required=True)


class AsOfReplySchema(Schema):
    at = fields.String(required=True)
    report = fields.String(required=True)
    group_by = fields.String(required=True)
    events_replayed = fields.Integer(required=True)
    totals = fields.List(fields.Nested(AsOfTotalSchema), required=True)


class AsOfReportQuerySchema(ReportQuerySchema):
    at = fields.String(required=True, metadata={"description": "the instant, ISO 8601 with offset"})


class AsOfReportReplySchema(ReportReplySchema):
    as_of = fields.String(required=True, metadata={"description": "the instant the figures stood at"})
    events_replayed = fields.Integer(required=True)


class ChangesQuerySchema(_Period):
    area = fields.String(validate=validate.OneOf(sorted(set(AREAS.values()))))


class AdminChangeSchema(Schema):
    at = fields.String(required=True)
    area = fields.String(required=True)
    subject = fields.String(required=True)
    change = fields.String(required=True)
    field = fields.String(required=True)
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)
    by = fields.String(required=True)


class ChangesReplySchema(Schema):
    changes = fields.List(fields.Nested(AdminChangeSchema), required=True)


def event_json(e: HistoryEvent) -> dict[str, Any]:
    return {"position": e.position, "aggregate": e.aggregate, "version": e.version, "type": e.type,
            "recorded_at": e.recorded_at, "fields": e.fields}


def _micros(q: dict, name: str) -> int | None:
    return to_micros(q[name]) if name in q else None


def event_filter(q: dict[str, Any]) -> EventFilter:
    """The EventFilter of a loaded EventQuerySchema (GET /api/v1/events, the console's Audit page)."""
    topics = tuple(dict.fromkeys(t.strip() for t in q["type"].split(","))) if "type" in q else ()
    return EventFilter(after=q["cursor"], limit=q["limit"], topics=topics, aggregate=q.get("aggregate"),
                       since=_micros(q, "since"), until=_micros(q, "until"))


def admin_changes_of(audit: Audit, q: dict[str, Any]) -> Iterator[Any]:
    """The admin changes a loaded ChangesQuerySchema asks for, oldest first."""
    return audit.changes(since=_micros(q, "since"), until=_micros(q, "until"), area=q.get("area"))


class EventsResource:
    roles = AUDIT_ROLES
    openapi = {"get": Operation("The event log, decoded into named fields, filtered by aggregate, type and "
                                "recorded time, paged by position", query=EventQuerySchema,
                                responses={200: "A page of events"}, reply=EventPageSchema)}

    def __init__(self, history: EventHistory) -> None:
        self.history = history
        self.schema = EventQuerySchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page, cursor = self.history.page(event_filter(load(self.schema, dict(req.params))))
        resp.media = {"events": [event_json(e) for e in page], "next_cursor": cursor}


class JobHistoryResource:
    roles = ("admin", "auditor", "user")
    openapi = {"get": Operation("Every event of one job (users: their own jobs only)",
                                responses={200: "The job's events", 400: "Not a job number",
                                           404: "No such job (or not yours)"},
                                reply=JobHistorySchema)}

    def __init__(self, history: EventHistory) -> None:
        self.history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        if not _JOB_NUMBER.fullmatch(job) or not 1 <= int(job) <= MAX_JOB_NUMBER:
            raise InvalidInput({"job": ["must be a job number (1 or more)"]})
        events = job_history(self.history, req.context.principal, int(job))
        if events is None:
            raise falcon.HTTPNotFound(title="No such job", description=f"there is no job {job} you may see")
        resp.media = {"job": int(job), "events": [event_json(e) for e in events]}


def job_history(history: EventHistory, principal: Any, job: int) -> list[HistoryEvent] | None:
    """Every event of job number `job`, decoded; None when there is no such job or the caller (a
    `user`) may not see it. GET /api/v1/jobs/{job}/history and the console's job page."""
    found = history.of_job(job)
    if found is None or (principal.role == "user" and found[0].get("user") != principal.subject):
        return None
    return found[1]


def _usage_row(group_by: str, t: Any) -> dict[str, Any]:
    """An as-of total in the row shape /api/v1/usage answers with (projections.usage_daily.UsageTotal:
    its pages are impressions, all copies)."""
    return {group_by: day_iso(t.key) if group_by == "day" else t.key, "jobs": t.jobs, "impressions": t.pages,
            "sheets": t.sheets, "colour_impressions": t.colour_pages, "mono_impressions": t.pages - t.colour_pages,
            "cost": t.cost}


class AsOfResource:
    roles = AUDIT_ROLES
    openapi = {"get": Operation("Usage as it stood at an instant: replays only the events recorded by then",
                                query=AsOfQuerySchema, responses={200: "Totals as of the instant"},
                                reply=AsOfReplySchema)}

    def __init__(self, audit: Audit, clock: Callable[[], int]) -> None:
        self.audit = audit
        self.clock = clock
        self.schema = AsOfQuerySchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(self.schema, dict(req.params))
        at = to_micros(q["at"])
        totals, read = self.audit.usage_as_of(at, q["group_by"])
        resp.media = {"at": iso(at) or from_micros(0).isoformat(), "report": q["report"], "group_by": q["group_by"],
                      "events_replayed": read, "totals": [usage_json(_usage_row(q["group_by"], t), q["group_by"])
                                                          for t in totals]}


class AsOfReportResource:
    """Any report of the catalogue as it stood at an instant (GET /api/v1/reports/{name}'s
    parameters, plus `at`): the read models are rebuilt from the events recorded by then."""

    roles = AUDIT_ROLES
    openapi = {"get": Operation("A report as it stood at an instant: every read model replayed from the events "
                                "recorded by then; format json, csv, xlsx, pdf or html",
                                query=AsOfReportQuerySchema, reply=AsOfReportReplySchema,
                                responses={200: "The report as of the instant (JSON, or the file asked for)",
                                           404: "No such report"})}

    def __init__(self, audit: Audit) -> None:
        self.audit = audit
        self.at = AsOfQuerySchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        raw = {k: v if isinstance(v, str) else str(v[-1]) for k, v in req.params.items()}
        fmt = raw.pop("format", "json")
        errors: dict[str, list[str]] = {}
        at = 0
        try:
            at = to_micros(self.at.load({"at": raw.pop("at", None)} if "at" in raw else {})["at"])
        except ValidationError as exc:
            errors.update({k: v for k, v in exc.normalized_messages().items() if k == "at"})
        # The report's dates are read in the site's time zone as it stood at the instant, as
        # every other setting the report reads (Audit.report_as_of).
        p = report_parameters(self.audit.settings_as_of(at), at, req, name, raw, fmt, errors)
        report, read = self.audit.report_as_of(at, name, p)
        if fmt == "json":
            resp.media = {**report_json(report), "as_of": iso(at), "events_replayed": read}
            return
        resp.content_type = MEDIA_TYPES[fmt]
        if fmt != "html":
            resp.downloadable_as = f"{name}-as-of.{fmt}"
        resp.stream = render(report, fmt)


class AdminChangesResource:
    roles = AUDIT_ROLES
    openapi = {"get": Operation("The audit log of admin changes: who changed what, when, old and new values",
                                query=ChangesQuerySchema, responses={200: "Changes, oldest first"},
                                reply=ChangesReplySchema)}

    def __init__(self, audit: Audit) -> None:
        self.audit = audit
        self.schema = ChangesQuerySchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        changes = admin_changes_of(self.audit, load(self.schema, dict(req.params)))
        resp.media = {"changes": [{"at": c.at, "area": c.area, "subject": c.subject, "change": c.change,
                                   "field": c.field, "old": c.old, "new": c.new, "by": c.by} for c in changes]}


OWN_COLUMNS = ("job", "submitted_at", "printer", "client_host", "document", "impressions_per_copy", "copies",
               "impressions_total", "sheets", "colour_impressions_per_copy", "duplex", "paper", "pdl", "cost",
               "status")


def _csv_line(values: Any) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v
                              for v in values])
    return out.getvalue().encode("utf-8")


class OwnJobsCsvResource:
    """A person's own jobs as CSV, newest first, streamed page by page (GDPR art. 15)."""

    roles = ("admin", "auditor", "user")
    openapi = {"get": Operation("Your own jobs as CSV (GDPR art. 15: the right of access)",
                                responses={200: "text/csv, one line a job"})}

    def __init__(self, reader: sa.Engine) -> None:
        self.reader = reader

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        login = req.context.principal.subject
        resp.content_type = "text/csv; charset=utf-8"
        resp.downloadable_as = "my-print-jobs.csv"
        resp.stream = self._lines(login)

    def _lines(self, login: str) -> Iterator[bytes]:
        yield _csv_line(OWN_COLUMNS)
        cursor = None
        while True:
            with self.reader.connect() as conn:
                page, cursor = list_jobs(conn, JobFilter(user=login, before_seq=cursor, limit=1000))
            for r in page:
                yield _csv_line((r.seq, iso(r.submitted_at), r.printer, r.client_host, r.document, r.pages, r.copies,
                                 r.pages * r.copies, r.sheets, r.colour_pages, r.duplex, r.paper, r.pdl,
                                 "" if r.denied else format_money(r.cost), "denied" if r.denied else "tracked"))
            if cursor is None:
                return


class ErasureSchema(Schema):
    user = fields.String(required=True, validate=[validate.Length(1, 255), validate.Regexp(NAME, error="not a login")])
    confirm = fields.String(required=True, metadata={"description": "the login again: erasing cannot be undone"})

    @validates_schema
    def _confirmed(self, data: dict, **_: object) -> None:
        if "user" in data and "confirm" in data and data["confirm"] != data["user"]:
            raise ValidationError({"confirm": ["must repeat the login"]})


class ErasureReplySchema(Schema):
    erased_as = fields.String(required=True, metadata={"description": "how the person is shown from now on"})
    jobs = fields.Integer(required=True)
    hosts = fields.Integer(required=True)
    known = fields.Boolean(required=True, metadata={"description": "whether jobs or a key existed for the login"})


class UnknownLogin(falcon.HTTPNotFound):
    """404 naming the field, as a 400 does."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(title="Unknown user", description=" ".join(m for ms in errors.values() for m in ms))
        self.field_errors = errors

    def to_dict(self, obj_type: type = dict) -> Any:
        data = super().to_dict(obj_type)
        data["errors"] = self.field_errors
        return data


class ErasureResource:
    """POST: crypto-shred a person's personal fields (GDPR art. 17; docs/audit-privacy.md)."""

    roles = ("admin",)
    openapi = {"post": Operation("Erase a person: their key is deleted, their document names and hosts can never "
                                 "be read again, their totals stay", body=ErasureSchema,
                                 responses={200: "Erased", 404: "No job or key was ever recorded for the login"},
                                 reply=ErasureReplySchema)}

    def __init__(self, erase: Callable[..., Any]) -> None:
        self.erase = erase
        self.schema = ErasureSchema()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = load(self.schema, req.get_media())
        try:
            result = self.erase(body["user"])
        except UnknownPerson as exc:
            raise UnknownLogin({"user": [str(exc)]}) from None
        resp.media = {"erased_as": f"erased user #{result.number}", "jobs": result.jobs, "hosts": result.hosts,
                      "known": result.login_known}


class VerificationStateSchema(RunStateSchema):
    progress = fields.Float(required=True, metadata={"description": "0 to 1: the seals are the first half, "
                                                                    "rebuilding the read models the second"})
    result = fields.Dict(required=True, allow_none=True, metadata={
        "description": "once done: ok, seconds, seals {ok, events, seals, head_digest, findings}, read_models "
                       "[{name, ok, rows, position, differences, shown}]"})
