"""/api/v1/reports: the report catalogue and each report, as JSON, CSV, XLSX, PDF or HTML.

Thin on purpose: parameters are checked by projections.report_period, reports computed by
projections.reports and rendered by projections.report_formats, which the scheduled reports
and the web console's pages use too. A caller with role `user` gets the reports that make
sense for one person, bound to their own jobs; the organisation-wide ones answer 403.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import falcon
import sqlalchemy as sa
from marshmallow import Schema, fields, validate

from api.errors import InvalidInput
from api.openapi import Operation
from commands.site_settings import SiteSettingsReader
from projections.report_formats import FORMATS, MEDIA_TYPES, render, report_json
from projections.report_period import (GROUPINGS, MAX_LIMIT, PDLS, ReportInputError, ReportParameters,
                                       parse_parameters)
from projections.reports import (CATALOGUE, Report, ReportSources, ReportSpec, catalogue_json, iter_jobs,
                                 run_report)
from projections.background_reports import BackgroundReports


class ReportNotFound(falcon.HTTPNotFound):
    """404 naming the field (`name`) and the reports there are."""

    def __init__(self, name: str) -> None:
        super().__init__(title="No such report", description=f"The catalogue: {', '.join(CATALOGUE)}.")
        self.name = name

    def to_dict(self, obj_type: type = dict) -> Any:
        data = super().to_dict(obj_type)
        data["errors"] = {"name": [f"no report {self.name[:64]!r}"]}
        return data


class ReportQuerySchema(Schema):
    """What a report takes (each report lists the ones it uses in GET /api/v1/reports). Dates
    alone are days in the site's time zone; `to` a date includes that whole day."""

    from_ = fields.String(data_key="from", metadata={"description": "YYYY-MM-DD or ISO 8601 with offset; "
                                                                   "default: the start of this month"})
    to = fields.String(metadata={"description": "YYYY-MM-DD (that day included) or ISO 8601 with offset; "
                                                "default: now"})
    timezone = fields.String(metadata={"description": "IANA name; default: the site setting `timezone`"})
    user = fields.String(validate=validate.Length(1, 255))
    department = fields.String(validate=validate.Length(1, 255))
    printer = fields.String(validate=validate.Length(1, 255))
    queue = fields.String(validate=validate.Length(1, 255))
    colour = fields.String(validate=validate.OneOf(("colour", "mono")))
    document_type = fields.String(validate=validate.OneOf(PDLS))
    group_by = fields.String(validate=validate.OneOf(GROUPINGS))
    limit = fields.Integer(validate=validate.Range(1, MAX_LIMIT))
    format = fields.String(validate=validate.OneOf(FORMATS), metadata={"description": "default json"})


class ReportEntrySchema(Schema):
    name = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    parameters = fields.List(fields.String(), required=True)
    roles = fields.List(fields.String(), required=True)


class CatalogueSchema(Schema):
    reports = fields.List(fields.Nested(ReportEntrySchema), required=True)
    formats = fields.List(fields.String(), required=True)


class SectionSchema(Schema):
    name = fields.String(required=True)
    title = fields.String(required=True)
    columns = fields.List(fields.String(), required=True)
    rows = fields.List(fields.Dict(), required=True)
    totals = fields.Dict()
    note = fields.String()


class ReportReplySchema(Schema):
    """A report as JSON; money as decimal strings, times ISO 8601."""

    report = fields.String(required=True)
    title = fields.String(required=True)
    period = fields.Dict(required=True)
    parameters = fields.Dict(required=True)
    sections = fields.List(fields.Nested(SectionSchema), required=True)
    notes = fields.List(fields.String(), required=True)
    factors = fields.List(fields.Dict(), required=True)
    charts = fields.List(fields.Dict(), required=True)
    definitions = fields.Dict(required=True)


class ReportCatalogueResource:
    roles = ("admin", "auditor", "user")
    openapi = {"get": Operation("The reports there are, with the parameters each takes", reply=CatalogueSchema)}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        role = req.context.principal.role
        resp.media = {"reports": [r for r in catalogue_json() if role in r["roles"]], "formats": list(FORMATS)}


def report_spec(req: falcon.Request, name: str) -> ReportSpec:
    """The catalogue's report `name`, if it is one for the caller's role (else 404 / 403)."""
    spec = CATALOGUE.get(name)
    if spec is None:
        raise ReportNotFound(name)
    if req.context.principal.role not in spec.roles:
        raise falcon.HTTPForbidden(title="Not allowed", description=f"the report {name} is for the roles "
                                                                    f"{', '.join(spec.roles)}")
    return spec


def prepare_report(reader: sa.Engine, site_settings: SiteSettingsReader, sources: ReportSources,
                   clock: Callable[[], int], req: falcon.Request, name: str, raw: dict[str, str],
                   fmt: str = "json") -> tuple[Report, ReportParameters]:
    """Check the parameters `raw` of report `name` for the caller (a user's are bound to their
    own jobs) and run it: GET /api/v1/reports/{name} and the console's report page both do so.
    Bad parameters raise InvalidInput naming each field."""
    p = report_parameters(site_settings, clock(), req, name, raw, fmt)
    try:
        return run_report(reader, name, p, sources), p
    except ReportInputError as exc:
        raise InvalidInput(exc.errors) from None


def report_parameters(site_settings: SiteSettingsReader | Mapping[str, Any], now: int, req: falcon.Request, name: str,
                      raw: dict[str, str], fmt: str = "json",
                      extra_errors: dict[str, list[str]] | None = None) -> ReportParameters:
    """The checked parameters `raw` of report `name` for the caller (a user's are bound to their
    own jobs); `now` (µs) is where a period left open ends. InvalidInput names every bad field,
    with `extra_errors` the caller found in its own parameters."""
    spec = report_spec(req, name)
    errors = dict(extra_errors or {})
    p = None
    try:
        p = parse_parameters(raw, site_timezone=str(site_settings["timezone"]), now=now, allowed=spec.parameters)
    except ReportInputError as exc:
        errors.update(exc.errors)
    if fmt not in FORMATS:
        errors["format"] = [f"one of: {', '.join(FORMATS)}"]
    if errors or p is None:
        raise InvalidInput(errors)
    if req.context.principal.role == "user":
        p = p.bound_to(req.context.principal.subject)
    return p


class ReportResource:
    roles = ("admin", "auditor", "user")
    openapi = {"get": Operation("Run one report (users: only their own jobs, and not the organisation-wide "
                                "reports); format json, csv, xlsx, pdf or html", query=ReportQuerySchema,
                                responses={200: "The report (JSON, or the file in the format asked for)",
                                           403: "The report is not one for this role", 404: "No such report"},
                                reply=ReportReplySchema)}

    def __init__(self, reader: sa.Engine, site_settings: SiteSettingsReader, sources: ReportSources,
                 clock: Callable[[], int]) -> None:
        self.reader = reader
        self.site_settings = site_settings
        self.sources = sources
        self.clock = clock

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        raw = {k: v if isinstance(v, str) else str(v[-1]) for k, v in req.params.items()}
        fmt = raw.get("format", "json")
        report, p = prepare_report(self.reader, self.site_settings, self.sources, self.clock, req, name, raw, fmt)
        if fmt == "json":
            resp.media = report_json(report)
            return
        privacy = str(self.sources.settings().get("document_names", "keep"))
        chunks = (lambda: iter_jobs(self.reader, p, privacy)) if name == "jobs" else None
        resp.content_type = MEDIA_TYPES[fmt]
        if fmt != "html":
            resp.downloadable_as = f"{name}.{fmt}"
        resp.stream = render(report, fmt, chunks)


class RunStateSchema(Schema):
    id = fields.String(required=True)
    report = fields.String(required=True)
    format = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(("queued", "running", "done", "failed")))
    progress = fields.Float(required=True, metadata={"description": "0 to 1"})
    rows_done = fields.Integer(required=True)
    rows_total = fields.Integer(allow_none=True, required=True)
    error = fields.String(required=True)
    file_url = fields.String(allow_none=True, required=True, metadata={"description": "where the file is, once done"})


def run_json(state: dict[str, Any]) -> dict[str, Any]:
    return {"id": state["id"], "report": state["report"], "format": state["format"], "state": state["state"],
            "progress": float(state["progress"]), "rows_done": int(state["rows_done"]),
            "rows_total": state["rows_total"], "error": state["error"],
            "file_url": f"/api/v1/report-runs/{state['id']}/file" if state["state"] == "done" else None}


class ReportRunsResource:
    """POST: run a report in the background (a long one: the job list of a year, say)."""

    roles = ("admin", "auditor", "user")
    openapi = {"post": Operation("Run a report in the background; poll its progress at the URL answered",
                                 query=ReportQuerySchema,
                                 responses={202: "Started: the run's state (as GET /api/v1/report-runs/{id})", 403: "The report is not one for this role",
                                            404: "No such report"})}

    def __init__(self, runs: BackgroundReports, site_settings: SiteSettingsReader, clock: Callable[[], int]) -> None:
        self.runs = runs
        self.site_settings = site_settings
        self.clock = clock

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        raw = {k: v if isinstance(v, str) else str(v[-1]) for k, v in req.params.items()}
        run_id = start_report_run(self.runs, self.site_settings, self.clock, req, name, raw)
        resp.status = falcon.HTTP_202
        resp.location = f"/api/v1/report-runs/{run_id}"
        resp.media = run_json(self.runs.store.load(run_id) or {})


def start_report_run(runs: BackgroundReports, site_settings: SiteSettingsReader, clock: Callable[[], int],
                     req: falcon.Request, name: str, raw: dict[str, str]) -> str:
    """Check report `name`'s parameters `raw` (with `format`, default csv) for the caller and start
    it in the background: POST /api/v1/reports/{name}/runs and the console's "run in the
    background" both do so. InvalidInput names each bad field; a user's run is bound to them."""
    spec = report_spec(req, name)
    principal = req.context.principal
    raw = dict(raw)
    fmt = raw.pop("format", "csv")
    errors: dict[str, list[str]] = {}
    try:
        parse_parameters(raw, site_timezone=str(site_settings["timezone"]), now=clock(), allowed=spec.parameters)
    except ReportInputError as exc:
        errors.update(exc.errors)
    if fmt not in FORMATS or fmt == "json":
        errors["format"] = ["one of: csv, xlsx, pdf, html"]
    if errors:
        raise InvalidInput(errors)
    return runs.start(name, raw, fmt, owner=principal.subject,
                      bound_to=principal.subject if principal.role == "user" else None)


def own_run(runs: BackgroundReports, req: falcon.Request, run_id: str) -> dict[str, Any]:
    """A background run's state, if the caller may see it (a user: their own runs), else 404."""
    return _own_run(runs, req, run_id)


def _own_run(runs: BackgroundReports, req: falcon.Request, run_id: str) -> dict[str, Any]:
    state = runs.store.load(run_id)
    principal = req.context.principal
    if state is None or (principal.role == "user" and state.get("owner") != principal.subject):
        raise falcon.HTTPNotFound(title="No such report run", description="no run with this id")
    return state


class ReportRunResource:
    roles = ("admin", "auditor", "user")
    openapi = {"get": Operation("A background report's state and progress (users: their own runs)",
                                reply=RunStateSchema, responses={404: "No such run"})}

    def __init__(self, runs: BackgroundReports) -> None:
        self.runs = runs

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        resp.media = run_json(_own_run(self.runs, req, run_id))


class ReportRunFileResource:
    roles = ("admin", "auditor", "user")
    openapi = {"get": Operation("A finished background report's file", responses={
        200: "The file", 404: "No such run", 409: "Not finished (or failed): see its state"})}

    def __init__(self, runs: BackgroundReports) -> None:
        self.runs = runs

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        state = _own_run(self.runs, req, run_id)
        if state["state"] != "done":
            raise falcon.HTTPConflict(title="Not ready", description=f"the run is {state['state']}"
                                      + (f": {state['error']}" if state["error"] else ""))
        resp.content_type = state["media_type"]
        if state["format"] != "html":
            resp.downloadable_as = state["filename"]
        resp.stream = self.runs.store.read(run_id)
