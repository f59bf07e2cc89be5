"""Reports (/reports): the catalogue (the reports of the caller's role), and /reports/{name}: one
report run with the filters its spec declares, shown as the html format's body (tables and the
server-rendered charts of projections.report_formats) inside the console's layout, with links to
the same report as CSV, XLSX and PDF from /api/v1/reports/{name} (the session cookie serves a GET).
Parameters are checked and the report run by api.report_catalogue.prepare_report, as the API does,
so a user's reports are bound to their own jobs here too."""
from __future__ import annotations

from typing import Callable
from urllib.parse import urlencode

import falcon
import sqlalchemy as sa

from api.console.render import EVERYONE, Renderer
from api.errors import InvalidInput
from api.openapi import Operation
from api.report_catalogue import ReportQuerySchema, prepare_report, report_spec
from commands.site_settings import SiteSettingsReader
from projections.report_formats import html_body
from projections.report_period import GROUPINGS, PDLS
from projections.reports import ReportSources, catalogue_json

DOWNLOADS = ("csv", "xlsx", "pdf")
TEXT_FILTERS = ("user", "department", "printer", "queue")
# Rows a table shows on the page (the html format's 500 weighed 165 KB for the usage report over
# 500 users: bench/console_bench.py); the rest are in the CSV and XLSX it links.
PAGE_ROWS = 100


class ReportsPage:
    page = True
    roles = EVERYONE
    openapi = {"get": Operation("Reports (HTML): the catalogue of the caller's reports",
                                responses={200: "The page", 303: "To login"})}

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        role = req.context.principal.role
        self.renderer.page(resp, "reports.html", req, title="Reports",
                           reports=[r for r in catalogue_json() if role in r["roles"]])


class ReportPage:
    page = True
    roles = EVERYONE
    openapi = {"get": Operation("One report (HTML) with its filters, charts and tables, and links to its CSV, XLSX "
                                "and PDF (users: their own jobs only)", query=ReportQuerySchema,
                                responses={200: "The report", 303: "To login", 400: "Bad filters, named beside them",
                                           403: "Not a report for this role", 404: "No such report"},
                                path_patterns={"name": r"^[a-z0-9-]{1,64}$"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, site_settings: SiteSettingsReader,
                 sources: ReportSources, clock: Callable[[], int]) -> None:
        self.renderer = renderer
        self.reader = reader
        self.site_settings = site_settings
        self.sources = sources
        self.clock = clock

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        spec = report_spec(req, name)
        given = {k: (v if isinstance(v, str) else str(v[-1])).strip() for k, v in req.params.items()
                 if k in spec.parameters}
        given = {k: v for k, v in given.items() if v}
        if req.context.principal.role == "user":
            given.pop("user", None)
            given.pop("department", None)
        errors: dict[str, list[str]] = {}
        body = None
        try:
            report, _ = prepare_report(self.reader, self.site_settings, self.sources, self.clock, req, name, given)
            body = html_body(report, rows=PAGE_ROWS)
        except InvalidInput as exc:
            errors = exc.field_errors
        query = urlencode(given)
        downloads = [(fmt.upper(), f"/api/v1/reports/{name}?{urlencode({**given, 'format': fmt})}") for fmt in DOWNLOADS]
        shown = [p for p in spec.parameters if not (req.context.principal.role == "user" and p in ("user", "department"))]
        self.renderer.page(resp, "report.html", req, status=falcon.HTTP_400 if errors else falcon.HTTP_200,
                           title=spec.title, spec=spec, given=given, errors=errors, body=body, downloads=downloads,
                           params=shown, text_filters=TEXT_FILTERS, groupings=GROUPINGS, pdls=PDLS,
                           self_url=f"/reports/{name}" + (f"?{query}" if query else ""))
