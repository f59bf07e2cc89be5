"""Reports → Scheduled reports (/report-schedules): the schedules there are (how each one's last
run went) and, for admins, a form that defines one — the report, its filters, the format, a cron
time, the period each run covers and the recipients — saved by api.report_schedules.define_schedule,
the handler of PUT /api/v1/report-schedules/{name}, so a bad cron or recipient is refused here in
the API's words, beside its field, and nothing is recorded. A report's page links here with its
filters filled in ("Schedule this report")."""
from __future__ import annotations

import re
from typing import Any

import falcon
import sqlalchemy as sa

from api.console.forms import Progress, caught_up, form
from api.console.render import ADMINS, READERS, Renderer
from api.errors import InvalidInput
from api.openapi import Operation
from api.report_schedules import define_schedule
from commands.report_schedules import DefineSchedule, RemoveSchedule
from domain.report_schedules import PERIODS
from projections.report_period import GROUPINGS, PDLS
from projections.report_schedules import list_schedules
from projections.reports import CATALOGUE

FORMATS = ("pdf", "csv", "xlsx", "html")
# The filters a schedule may keep (its period is set by `period`, relative to each run).
FILTERS = ("user", "department", "printer", "queue", "colour", "document_type", "group_by", "limit")
_SPLIT = re.compile(r"[\s,;]+")


class ReportSchedulesPage:
    page = True
    form_csrf = True
    roles = READERS
    method_roles = {"post": ADMINS}
    openapi = {"get": Operation("Scheduled reports (HTML): the list and, for admins, the form defining one (report "
                                "= a report to fill in, with its filters)",
                                responses={200: "The page", 303: "To login"}),
               "post": Operation("Define (action=define: name, report, format, cron, period, recipients, filters) or "
                                 "remove (action=remove, name) a scheduled report (HTML form with csrf_token)",
                                 responses={303: "Saved: back to the list", 400: "Bad fields, shown beside them",
                                            404: "No such schedule"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, define: DefineSchedule, remove: RemoveSchedule,
                 progress: Progress) -> None:
        self.renderer = renderer
        self.reader = reader
        self.define = define
        self.remove = remove
        self.progress = progress

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = {k: v.strip() for k, v in req.params.items() if isinstance(v, str)}
        entered = {"report": given.get("report", "usage"), "format": "pdf", "period": "previous-week",
                   **{f: given[f] for f in FILTERS if given.get(f)}}
        notice = {"saved": "Schedule saved.", "removed": "Schedule removed."}.get(given.get("done", ""), "")
        self._show(req, resp, falcon.HTTP_200, {}, entered, notice)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = {k: v.strip() if isinstance(v, str) else v for k, v in form(req).items() if k != "csrf_token"}
        by = req.context.principal.subject
        if data.get("action") == "remove":
            if not self.remove(str(data.get("name", "")), by=by):
                raise falcon.HTTPNotFound(title="No such schedule", description="There is no schedule by that name.")
            caught_up(self.progress, ("report_schedules",))
            raise falcon.HTTPSeeOther("/report-schedules?done=removed")
        body: dict[str, Any] = {
            "report": data.get("report", ""), "format": data.get("format", ""), "cron": data.get("cron", ""),
            "period": data.get("period", ""),
            "recipients": [a for a in _SPLIT.split(str(data.get("recipients", ""))) if a],
            "parameters": {f: data[f] for f in FILTERS if data.get(f)},
        }
        try:
            define_schedule(self.define, str(data.get("name", "")), body, by=by)
        except InvalidInput as exc:
            return self._show(req, resp, falcon.HTTP_400, beside_fields(exc.field_errors, body["recipients"]), data)
        caught_up(self.progress, ("report_schedules",))
        raise falcon.HTTPSeeOther("/report-schedules?done=saved")

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str, errors: dict[str, list[str]],
              entered: dict[str, Any], notice: str = "") -> None:
        with self.reader.connect() as conn:
            schedules = list_schedules(conn)
        report = CATALOGUE.get(str(entered.get("report", "")))
        filters = [f for f in FILTERS if report is None or f in report.parameters]
        self.renderer.page(resp, "report_schedules.html", req, status=status, title="Scheduled reports",
                           schedules=schedules, errors=errors, entered=entered, notice=notice,
                           reports=[(name, spec.title) for name, spec in CATALOGUE.items() if "admin" in spec.roles],
                           formats=FORMATS, periods=PERIODS, filters=filters, groupings=GROUPINGS, pdls=PDLS,
                           editable=req.context.principal.role in ADMINS)


def beside_fields(errors: dict[str, list[str]], recipients: list[str]) -> dict[str, list[str]]:
    """The API's field names as the form's: `recipients.2` beside the recipients (naming the
    address), `parameters.user` beside the user filter."""
    out: dict[str, list[str]] = {}
    for key, messages in errors.items():
        field, _, rest = key.partition(".")
        if field == "recipients" and rest.isdigit():
            address = recipients[int(rest)] if int(rest) < len(recipients) else rest
            messages = [f"{address}: {m}" for m in messages]
        elif field == "parameters" and rest in FILTERS:
            field = rest
        elif field == "parameters":
            field = "filters"
            messages = [f"{rest}: {m}" for m in messages]
        out.setdefault(field, []).extend(messages)
    return out
