"""/api/v1/jobs and /api/v1/usage: job accounting and usage totals, from the read models.

A caller with role "user" sees only their own jobs and totals, whatever filter they send.
"""
from __future__ import annotations

from typing import Any

import falcon
import sqlalchemy as sa
from marshmallow import Schema, fields, validate

from api.errors import load
from api.openapi import Operation
from domain.units import day_iso, day_of, first_day_from, format_money, from_micros, to_micros
from projections.jobs import JobFilter, JobRow, list_jobs
from projections.usage_daily import GROUPS, UsageTotal, usage_totals

READ_ROLES = ("admin", "auditor", "user")


class JobQuerySchema(Schema):
    user = fields.String(validate=validate.Length(1, 255))
    printer = fields.String(validate=validate.Length(1, 255))
    since = fields.AwareDateTime(data_key="from")
    until = fields.AwareDateTime(data_key="to")
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    cursor = fields.Integer(validate=validate.Range(min=1))


class UsageQuerySchema(Schema):
    group_by = fields.String(load_default="user", validate=validate.OneOf(GROUPS))
    since = fields.AwareDateTime(data_key="from")
    until = fields.AwareDateTime(data_key="to")


def _own_user(req: falcon.Request, requested: str | None) -> str | None:
    principal = req.context.principal
    return principal.subject if principal.role == "user" else requested


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
                                query=JobQuerySchema, responses={200: "A page of jobs and the next cursor"})}

    def __init__(self, reader: sa.Engine) -> None:
        self.reader = reader
        self.schema = JobQuerySchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(self.schema, dict(req.params))
        f = JobFilter(
            user=_own_user(req, q.get("user")), printer=q.get("printer"),
            since=to_micros(q["since"]) if "since" in q else None,
            until=to_micros(q["until"]) if "until" in q else None,
            before_seq=q.get("cursor"), limit=q["limit"],
        )
        with self.reader.connect() as conn:
            page, cursor = list_jobs(conn, f)
        resp.media = {"jobs": [job_json(r) for r in page], "next_cursor": cursor}


class UsageResource:
    roles = READ_ROLES
    openapi = {"get": Operation("Usage totals grouped by user, printer or day (users: their own only)",
                                query=UsageQuerySchema, responses={200: "Totals"})}

    def __init__(self, reader: sa.Engine) -> None:
        self.reader = reader
        self.schema = UsageQuerySchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(self.schema, dict(req.params))
        since = day_of(to_micros(q["since"])) if "since" in q else None
        until = first_day_from(to_micros(q["until"])) if "until" in q else None
        with self.reader.connect() as conn:
            rows = usage_totals(conn, q["group_by"], user=_own_user(req, None), since_day=since, until_day=until)
        resp.media = {"group_by": q["group_by"], "totals": [usage_json(q["group_by"], t) for t in rows]}
