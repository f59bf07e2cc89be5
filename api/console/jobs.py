"""Job Accounting (/jobs), a job's page (/jobs/{job}), the CSV export (/jobs.csv) and My jobs
(/my/jobs): the read model's `list_jobs` and `find_job`, filtered with the API's own query
schema (api.reports), so the console and /api/v1/jobs cannot disagree. A `user` sees only
their own jobs, here as there; another user's job number answers 404, as a missing one does."""
from __future__ import annotations

import csv
import json
from datetime import date, timedelta
import io
from dataclasses import replace
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import falcon
import sqlalchemy as sa
from marshmallow import fields, validate

from api.console.render import EVERYONE, READERS, Renderer
from api.audit import job_history
from api.errors import InvalidInput, load
from api.openapi import Operation
from api.reports import MAX_JOB_NUMBER, NEVER_CHARGED, JobQuerySchema, job_filter
from domain.units import format_money, from_micros
from projections.event_history import EventHistory
from projections.held_jobs import held_job
from projections.jobs import STATUS_CODES, STATUS_NAMES, JobFilter, JobRow, find_job, list_jobs, printer_names

PAGE_SIZE = 50
CSV_MAX_ROWS = 1_000_000
CSV_CHUNK = 1000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")
# Every state the jobs read model holds, in the words the pages use (projections.jobs.STATUS_NAMES).
STATE_LABELS = {"tracked": "tracked", "denied": "denied", "held": "held", "released": "released",
                "printed": "printed", "failed": "release failed", "expired": "expired", "deleted": "deleted"}
assert set(STATE_LABELS) == set(STATUS_NAMES.values())


class ConsoleJobQuerySchema(JobQuerySchema):
    state = fields.String(load_default="all", validate=validate.OneOf(("all", *STATE_LABELS)))
    sort = fields.String(load_default="newest", validate=validate.OneOf(("newest", "oldest")))


def _query(req: falcon.Request) -> dict[str, str]:
    """The filter form's fields as given, blanks left out (an empty field filters nothing); a
    date picker's day (YYYY-MM-DD) is that day's start in UTC, "to" the next day's (inclusive)."""
    given = {k: v.strip() for k, v in req.params.items() if isinstance(v, str) and v.strip() != ""}
    for key in ("from", "to"):
        value = given.get(key, "")
        if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.replace("-", "").isdigit():
            given[key] = _day_after(value) if key == "to" else value + "T00:00:00+00:00"
    return given


day_query = _query  # the Audit page reads its date pickers so too


def _day_after(day: str) -> str:
    try:
        return (date.fromisoformat(day) + timedelta(days=1)).isoformat() + "T00:00:00+00:00"
    except ValueError:
        return day  # the schema names it


def _filter(req: falcon.Request, q: dict[str, Any], limit: int) -> JobFilter:
    f = job_filter(req, {**q, "limit": limit})
    if q["state"] != "all":
        f = replace(f, status=STATUS_CODES[q["state"]])
    if q["sort"] == "oldest":
        f = replace(f, oldest_first=True, before_seq=None, after_seq=q.get("cursor"))
    return f


def spreadsheet_safe(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


QUERY_DOC = ConsoleJobQuerySchema


class JobsPage:
    page = True
    roles = EVERYONE
    openapi = {"get": Operation("Job Accounting (HTML): filters, sorting, keyset paging (users: their own)",
                                query=QUERY_DOC, responses={200: "The page", 303: "To the login page"})}
    mine = False

    def __init__(self, renderer: Renderer, reader: sa.Engine, clock: Callable[[], int]) -> None:
        self.renderer = renderer
        self.reader = reader
        self.schema = ConsoleJobQuerySchema(clock)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        principal = req.context.principal
        if not self.mine and principal.role not in READERS:
            raise falcon.HTTPSeeOther("/my/jobs")
        given = _query(req)
        errors: dict[str, list[str]] = {}
        try:
            q = load(self.schema, given)
        except InvalidInput as exc:
            errors = exc.field_errors
            q = load(self.schema, {})
        if self.mine:
            q["user"] = principal.subject
        with self.reader.connect() as conn:
            rows, cursor = list_jobs(conn, _filter(req, q, PAGE_SIZE))
            printers = printer_names(conn) if principal.role in READERS else []
        shown = {k: v for k, v in req.params.items() if isinstance(v, str) and v.strip()}
        keep = {k: v for k, v in shown.items() if k != "cursor"}
        next_url = f"{req.path}?{urlencode({**keep, 'cursor': cursor})}" if cursor else ""
        csv_url = "/jobs.csv" + (f"?{urlencode(keep)}" if keep else "")
        self.renderer.page(resp, "jobs.html", req, status=falcon.HTTP_400 if errors else falcon.HTTP_200,
                           title="My jobs" if self.mine else "Job Accounting", rows=rows, states=STATE_LABELS, given=shown, given_to=shown.get("to", "")[:10],
                           errors=errors, printers=printers, next_url=next_url, csv_url=csv_url, mine=self.mine,
                           page_cost=sum(r.cost for r in rows), page_pages=sum(r.pages * r.copies for r in rows))


class MyJobsPage(JobsPage):
    openapi = {"get": Operation("My jobs (HTML): the logged-in user's own history and costs", query=QUERY_DOC,
                                responses={200: "The page", 303: "To the login page"})}
    mine = True


class JobPage:
    """One job: its row in the read model (its state now) and its full event history, decoded by
    the query of GET /api/v1/jobs/{job}/history (api.audit.job_history); a secure job adds where
    it was released, why a release failed and when it expires (projections.held_jobs)."""

    page = True
    roles = EVERYONE
    openapi = {"get": Operation("One job's details, state and event history (HTML); users: their own only",
                                responses={200: "The page", 303: "To the login page", 404: "No such job"},
                                path_patterns={"job": r"^[0-9]{1,19}$"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, history: EventHistory) -> None:
        self.renderer = renderer
        self.reader = reader
        self.history = history

    def on_get(self, req: falcon.Request, resp: falcon.Response, job: str) -> None:
        missing = falcon.HTTPNotFound(title="No such job", description="There is no job with that number.")
        if not job.isdigit() or not 0 < int(job) <= MAX_JOB_NUMBER:
            raise missing
        with self.reader.connect() as conn:
            row = find_job(conn, int(job))
        principal = req.context.principal
        if row is None or (principal.role not in READERS and row.user != principal.subject):
            raise missing
        events = job_history(self.history, principal, row.seq)
        if events is None:
            if principal.role not in READERS:
                raise missing  # the job's own events do not name this user
            events = []  # a row without its events (never expected): the page still shows the row
        held = None
        if events:
            with self.reader.connect() as conn:
                held = held_job(conn, events[0].aggregate)
        self.renderer.page(resp, "job.html", req, title=f"Job {row.seq}", job=row, events=events, held=held,
                           state=STATE_LABELS.get(row.status, row.status), charged=not (
                               row.denied or row.status in NEVER_CHARGED), show=_show,
                           back="/jobs" if principal.role in READERS else "/my/jobs")


def _show(value: object) -> str:
    """An event field's value as text (the template escapes it)."""
    if value is None:
        return "—"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)[:500]
    return str(value)[:500]


CSV_COLUMNS = ("job", "submitted_at", "user", "printer", "client_host", "document", "pages", "copies", "sheets",
               "colour_pages", "duplex", "paper", "size", "pdl", "cost", "status")


def csv_row(r: JobRow) -> list[str]:
    return [spreadsheet_safe(v) for v in (
        r.seq, from_micros(r.submitted_at).isoformat(), r.user, r.printer, r.client_host, r.document, r.pages,
        r.copies, r.sheets, r.colour_pages, "yes" if r.duplex else "no", r.paper, r.size, r.pdl,
        "" if r.denied or r.status in NEVER_CHARGED else format_money(r.cost), r.status)]


class JobsCsv:
    page = True
    roles = EVERYONE
    openapi = {"get": Operation("The filtered jobs as CSV (cells that look like formulas are quoted as text)",
                                query=QUERY_DOC, responses={200: "text/csv", 303: "To the login page"})}

    def __init__(self, reader: sa.Engine, clock: Callable[[], int]) -> None:
        self.reader = reader
        self.schema = ConsoleJobQuerySchema(clock)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(self.schema, _query(req))
        first = _filter(req, q, CSV_CHUNK)
        resp.content_type = "text/csv; charset=utf-8"
        resp.downloadable_as = "jobs.csv"
        resp.stream = self._rows(first)

    def _rows(self, f: JobFilter) -> Iterator[bytes]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        sent = 0
        while True:
            with self.reader.connect() as conn:
                rows, cursor = list_jobs(conn, f)
            for r in rows:
                writer.writerow(csv_row(r))
            sent += len(rows)
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
            if cursor is None or sent >= CSV_MAX_ROWS:
                return
            f = replace(f, after_seq=cursor) if f.oldest_first else replace(f, before_seq=cursor)
