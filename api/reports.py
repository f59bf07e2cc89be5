"""/api/v1/jobs and /api/v1/usage: job accounting and usage totals, from the read models.

A caller with role "user" sees only their own jobs and totals, whatever filter they send.
"""
from __future__ import annotations

from typing import Any, Callable

import falcon
import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.errors import load
from api.openapi import Operation
from commands.job_reports import NAME, time_outside_window, latest_submitted_at
from domain.units import day_iso, day_of, first_day_from, format_money, from_micros, to_micros
from projections.jobs import JobFilter, JobRow, list_jobs
from projections.usage_daily import GROUPS, UsageTotal, usage_totals

READ_ROLES = ("admin", "auditor", "user")


# A job number (the keyset cursor) is a BIGINT: anything wider is no job of ours.
MAX_JOB_NUMBER = (1 << 63) - 1


class _TimeWindowQuery(Schema):
    """`from` and `to` within the times a job may hold (commands.job_reports: 1970-01-01 to a
    day after the server's clock), so every bound converts to µs and back."""

    since = fields.AwareDateTime(data_key="from", metadata={"description": "ISO 8601 with offset, 1970 on"})
    until = fields.AwareDateTime(data_key="to", metadata={
        "description": "ISO 8601 with offset, at most one day after the server's time"})

    def __init__(self, clock: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock

    @validates_schema
    def _within_window(self, data: dict, **_: object) -> None:
        latest = latest_submitted_at(self.clock()) if self.clock else None
        errors = {key: [problem] for name, key in (("since", "from"), ("until", "to")) if name in data
                  for problem in [time_outside_window(data[name], latest)] if problem}
        if errors:
            raise ValidationError(errors)


class JobQuerySchema(_TimeWindowQuery):
    user = fields.String(validate=[validate.Length(1, 255), validate.Regexp(NAME, error="not a login")])
    printer = fields.String(validate=[validate.Length(1, 255), validate.Regexp(NAME, error="not a printer name")])
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    cursor = fields.Integer(validate=validate.Range(1, MAX_JOB_NUMBER),
                            metadata={"description": "next_cursor of the page before"})


class UsageQuerySchema(_TimeWindowQuery):
    group_by = fields.String(load_default="user", validate=validate.OneOf(GROUPS))


class JobSchema(Schema):
    """One job of /api/v1/jobs (money as a decimal string, times ISO 8601)."""

    job = fields.Integer(required=True, metadata={"description": "the job's number (cursors count down from it)"})
    user = fields.String(required=True)
    printer = fields.String(required=True)
    client_host = fields.String(required=True)
    document = fields.String(required=True)
    submitted_at = fields.String(required=True, metadata={"description": "ISO 8601 with offset"})
    pages = fields.Integer(required=True)
    copies = fields.Integer(required=True)
    sheets = fields.Integer(required=True)
    colour_pages = fields.Integer(required=True)
    duplex = fields.Boolean(required=True)
    paper = fields.String(required=True)
    size = fields.Integer(required=True)
    pdl = fields.String(required=True)
    cost = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("tracked", "denied")))
    submitted_at_clamped = fields.Boolean(metadata={
        "description": "present (true) when the recorded time lay outside 1970..9999: submitted_at shows the "
                       "nearest"})


class JobPageSchema(Schema):
    jobs = fields.List(fields.Nested(JobSchema), required=True)
    next_cursor = fields.Integer(required=True, allow_none=True, metadata={"description": "null on the last page"})


class UsageTotalSchema(Schema):
    """One group's totals; the group's key is named after `group_by` (user, printer or day)."""

    user = fields.String()
    printer = fields.String()
    day = fields.String(metadata={"description": "YYYY-MM-DD"})
    jobs = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    sheets = fields.Integer(required=True)
    colour_pages = fields.Integer(required=True)
    cost = fields.String(required=True)


class UsageReplySchema(Schema):
    group_by = fields.String(required=True, validate=validate.OneOf(GROUPS))
    totals = fields.List(fields.Nested(UsageTotalSchema), required=True)


def _own_user(req: falcon.Request, requested: str | None) -> str | None:
    principal = req.context.principal
    return principal.subject if principal.role == "user" else requested


def job_filter(req: falcon.Request, q: dict[str, Any], **more: Any) -> JobFilter:
    """The read model's filter from a loaded JobQuerySchema (the API's and the console's): a
    `user` caller is bound to their own jobs whatever they asked for."""
    return JobFilter(
        user=_own_user(req, q.get("user")), printer=q.get("printer"),
        since=to_micros(q["since"]) if "since" in q else None,
        until=to_micros(q["until"]) if "until" in q else None,
        before_seq=q.get("cursor"), limit=q["limit"], **more,
    )


def job_json(r: JobRow) -> dict[str, Any]:
    return {
        "job": r.seq, "user": r.user, "printer": r.printer, "client_host": r.client_host,
        "document": r.document, "submitted_at": from_micros(r.submitted_at).isoformat(),
        "pages": r.pages, "copies": r.copies, "sheets": r.sheets,
        "colour_pages": r.colour_pages, "duplex": r.duplex, "paper": r.paper,
        "size": r.size, "pdl": r.pdl, "cost": format_money(r.cost),
        "status": "denied" if r.denied else "tracked",
        # true when the recorded time lay outside 1970..9999 and `submitted_at` shows the nearest
        **({"submitted_at_clamped": True} if r.submitted_at_clamped else {}),
    }


def usage_json(group_by: str, t: UsageTotal) -> dict[str, Any]:
    key = day_iso(int(t.key)) if group_by == "day" else t.key
    return {group_by: key, "jobs": t.jobs, "pages": t.pages, "sheets": t.sheets, "colour_pages": t.colour_pages,
            "cost": format_money(t.cost)}


class JobListResource:
    roles = READ_ROLES
    openapi = {"get": Operation("Tracked and denied jobs, newest first, keyset paged (users: their own only)",
                                query=JobQuerySchema, responses={200: "A page of jobs and the next cursor"},
                                reply=JobPageSchema)}

    def __init__(self, reader: sa.Engine, clock: Callable[[], int]) -> None:
        self.reader = reader
        self.schema = JobQuerySchema(clock)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        f = job_filter(req, load(self.schema, dict(req.params)))
        with self.reader.connect() as conn:
            page, cursor = list_jobs(conn, f)
        resp.media = {"jobs": [job_json(r) for r in page], "next_cursor": cursor}


class UsageResource:
    roles = READ_ROLES
    openapi = {"get": Operation("Usage totals grouped by user, printer or day (users: their own only)",
                                query=UsageQuerySchema, responses={200: "Totals"}, reply=UsageReplySchema)}

    def __init__(self, reader: sa.Engine, clock: Callable[[], int]) -> None:
        self.reader = reader
        self.schema = UsageQuerySchema(clock)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(self.schema, dict(req.params))
        since = day_of(to_micros(q["since"])) if "since" in q else None
        until = first_day_from(to_micros(q["until"])) if "until" in q else None
        with self.reader.connect() as conn:
            rows = usage_totals(conn, q["group_by"], user=_own_user(req, None), since_day=since, until_day=until)
        resp.media = {"group_by": q["group_by"], "totals": [usage_json(q["group_by"], t) for t in rows]}
