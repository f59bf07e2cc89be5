"""A long report run from the console: "Run in the background" on a report's page posts here
(/reports/{name}/runs), which starts it with api.report_catalogue.start_report_run — the code of
POST /api/v1/reports/{name}/runs (projections.background_reports: rq on Redis, else a thread) —
and /report-runs/{id} shows its progress (progress.js polls /api/v1/report-runs/{id}; without
script, a Refresh link) and then the file to download. Users see only their own runs."""
from __future__ import annotations

from typing import Callable
from urllib.parse import urlencode

import falcon

from api.console.forms import form
from api.console.render import EVERYONE, Renderer
from api.errors import InvalidInput
from api.openapi import Operation
from api.report_catalogue import own_run, run_json, start_report_run
from commands.site_settings import SiteSettingsReader
from projections.background_reports import BackgroundReports


class ReportRunStartPage:
    page = True
    form_csrf = True
    roles = EVERYONE
    openapi = {"post": Operation("Run a report in the background (HTML form with csrf_token: its filters and "
                                 "format); to the run's progress page",
                                 responses={303: "To the run's page", 400: "Bad filters, named",
                                            403: "Not a report for this role", 404: "No such report"},
                                 path_patterns={"name": r"^[a-z0-9-]{1,64}$"})}

    def __init__(self, runs: BackgroundReports, site_settings: SiteSettingsReader, clock: Callable[[], int]) -> None:
        self.runs = runs
        self.site_settings = site_settings
        self.clock = clock

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        raw = {k: v.strip() for k, v in form(req).items() if k != "csrf_token" and isinstance(v, str) and v.strip()}
        try:
            run_id = start_report_run(self.runs, self.site_settings, self.clock, req, name, raw)
        except InvalidInput as exc:
            # The report's page names bad filters beside them; the format comes from a fixed list.
            exc.description = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.field_errors.items())
            raise
        raise falcon.HTTPSeeOther(f"/report-runs/{run_id}")


class ReportRunPage:
    page = True
    roles = EVERYONE
    openapi = {"get": Operation("A background report's progress, then its file (HTML; users: their own runs)",
                                responses={200: "The page", 303: "To login", 404: "No such run"},
                                path_patterns={"run_id": r"^[0-9a-f]{32}$"})}

    def __init__(self, renderer: Renderer, runs: BackgroundReports) -> None:
        self.renderer = renderer
        self.runs = runs

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        state = own_run(self.runs, req, run_id)
        run = run_json(state)
        back = f"/reports/{state['report']}"
        filters = {k: v for k, v in state["parameters"].items() if isinstance(v, str)}
        self.renderer.page(resp, "report_run.html", req, title=f"Report run: {state['report']}", run=run,
                           poll=f"/api/v1/report-runs/{run_id}",
                           back=back + (f"?{urlencode(filters)}" if filters else ""))
