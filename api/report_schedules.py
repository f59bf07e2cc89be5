"""/api/v1/report-schedules: define, list and remove scheduled reports (admins), and see how
each one's last run went (auditors too). Each definition is checked whole when it is saved —
report, parameters, cron, format, period, recipients — and refused with a 400 naming the field."""
from __future__ import annotations

from typing import Any

import falcon
import sqlalchemy as sa
from marshmallow import Schema, fields, validate

from api.errors import InvalidInput, load
from api.openapi import Operation
from commands.report_schedules import DefineSchedule, RemoveSchedule, ScheduleDefinition
from commands.validation import InvalidRequest
from domain.report_schedules import PERIODS
from domain.units import iso
from projections.report_schedules import ScheduleRow, list_schedules


class ScheduleBodySchema(Schema):
    report = fields.String(required=True, validate=validate.Length(1, 64))
    parameters = fields.Dict(keys=fields.String(validate=validate.Length(1, 64)),
                             values=fields.String(validate=validate.Length(0, 255)), load_default=dict,
                             validate=validate.Length(max=20))
    format = fields.String(load_default="pdf", validate=validate.OneOf(("csv", "xlsx", "pdf", "html")))
    cron = fields.String(required=True, validate=validate.Length(1, 100),
                         metadata={"description": "five fields, in the site's time zone, e.g. 0 7 * * 1"})
    recipients = fields.List(fields.String(validate=validate.Length(1, 254)), required=True,
                             validate=validate.Length(1, 50))
    period = fields.String(load_default="previous-day", validate=validate.OneOf(PERIODS))


class ScheduleSchema(Schema):
    name = fields.String(required=True)
    report = fields.String(required=True)
    parameters = fields.Dict(required=True)
    format = fields.String(required=True)
    cron = fields.String(required=True)
    period = fields.String(required=True)
    recipients = fields.List(fields.String(), required=True)
    defined_at = fields.String(required=True, allow_none=True)
    defined_by = fields.String(required=True)
    last_due = fields.String(required=True, allow_none=True, metadata={"description": "null: never run"})
    last_outcome = fields.String(required=True, metadata={"description": "'', claimed, sent or failed"})
    last_attempts = fields.Integer(required=True)
    last_error = fields.String(required=True)


class ScheduleListSchema(Schema):
    schedules = fields.List(fields.Nested(ScheduleSchema), required=True)


def schedule_json(r: ScheduleRow) -> dict[str, Any]:
    return {"name": r.name, "report": r.report, "parameters": r.parameters, "format": r.format, "cron": r.cron,
            "period": r.period, "recipients": r.recipients, "defined_at": iso(r.defined_at),
            "defined_by": r.defined_by, "last_due": iso(r.last_due), "last_outcome": r.last_outcome,
            "last_attempts": r.last_attempts, "last_error": r.last_error}


def define_schedule(define: DefineSchedule, name: str, body: dict[str, Any], *, by: str) -> None:
    """Check a schedule's definition whole and save it (PUT /api/v1/report-schedules/{name} and
    the console's Reports → Schedules form); InvalidInput names every bad field."""
    data = load(ScheduleBodySchema(), body)
    try:
        define(ScheduleDefinition(name, data["report"], data["parameters"], data["format"], data["cron"],
                                  tuple(data["recipients"]), data["period"]), by=by)
    except InvalidRequest as exc:
        raise InvalidInput(exc.errors) from None


class ScheduleListResource:
    roles = ("admin", "auditor")
    openapi = {"get": Operation("The scheduled reports and how each one's last run went", reply=ScheduleListSchema)}

    def __init__(self, reader: sa.Engine) -> None:
        self.reader = reader

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.reader.connect() as conn:
            resp.media = {"schedules": [schedule_json(r) for r in list_schedules(conn)]}


class ScheduleResource:
    roles = ("admin",)
    openapi = {"put": Operation("Define or change a scheduled report (refused, naming the field, when any part "
                                "of it is bad)", body=ScheduleBodySchema, responses={204: "Saved"}),
               "delete": Operation("Remove a scheduled report", responses={204: "Removed", 404: "No such schedule"})}

    def __init__(self, define: DefineSchedule, remove: RemoveSchedule) -> None:
        self.define = define
        self.remove = remove
        self.schema = ScheduleBodySchema()

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        define_schedule(self.define, name, req.get_media(default_when_empty=None) or {},
                        by=req.context.principal.author)
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if not self.remove(name, by=req.context.principal.author):
            raise falcon.HTTPNotFound(title="No such schedule", description=f"there is no schedule {name[:100]!r}")
        resp.status = falcon.HTTP_204
