"""/api/v1/jobs and /api/v1/usage: job accounting and usage totals, from the read models.

A caller with role "user" sees only their own jobs and totals, whatever filter they send.
"""
from __future__ import annotations

import falcon
from marshmallow import Schema, fields, validate

from api.errors import load
from pageledger.bootstrap import Runtime
from pageledger.codec import to_micros
from projections.queries import GROUPS, JobFilter, list_jobs, usage_totals
from projections.usage_daily import MICROS_PER_DAY

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


class JobListResource:
    roles = READ_ROLES

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.schema = JobQuerySchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(self.schema, dict(req.params))
        f = JobFilter(
            user=_own_user(req, q.get("user")), printer=q.get("printer"),
            since=to_micros(q["since"]) if "since" in q else None,
            until=to_micros(q["until"]) if "until" in q else None,
            before_seq=q.get("cursor"), limit=q["limit"],
        )
        with self.runtime.reader.connect() as conn:
            page, cursor = list_jobs(conn, f)
        resp.media = {"jobs": page, "next_cursor": cursor}


class UsageResource:
    roles = READ_ROLES

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.schema = UsageQuerySchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(self.schema, dict(req.params))
        since = to_micros(q["since"]) // MICROS_PER_DAY if "since" in q else None
        until = -(-to_micros(q["until"]) // MICROS_PER_DAY) if "until" in q else None
        with self.runtime.reader.connect() as conn:
            rows = usage_totals(conn, q["group_by"], user=_own_user(req, None), since_day=since, until_day=until)
        resp.media = {"group_by": q["group_by"], "totals": rows}
