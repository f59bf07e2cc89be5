"""/api/v1/jobs and /api/v1/usage: job accounting and usage totals, from the read models.

A caller with role "user" sees only their own jobs and totals, whatever filter they send.
`from` and `to` take an ISO 8601 time with offset (that instant) or a date alone, a day in the
site's time zone (`to` a date includes that day). Both are exact: /usage adds the job rows of
partial days to the daily totals (projections.reports). "Pages" is named once: a job's
`impressions_per_copy` (also still `pages`) and `impressions` (all copies); usage totals count
`impressions`. A denied job was never charged: its `cost` is null, and usage counts it apart.
"""
from __future__ import annotations

from typing import Any, Callable

import falcon
import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate

from api.errors import load
from api.openapi import Operation
from commands.job_reports import NAME, time_outside_window, latest_submitted_at
from commands.site_settings import SiteSettingsReader
from domain.units import format_money, from_micros
from projections.jobs import STATUS_NAMES, JobFilter, JobRow, list_jobs
from projections.report_period import LATEST_US, ReportParameters, parse_instant
from projections.reports import grouped_usage, resolve_scope
from projections.usage_daily import GROUPS
from zoneinfo import ZoneInfo

READ_ROLES = ("admin", "auditor", "user")


# A job number (the keyset cursor) is a BIGINT: anything wider is no job of ours.
MAX_JOB_NUMBER = (1 << 63) - 1


class _Instant(fields.String):
    """An ISO 8601 time with offset, or a date alone (a day in the site's time zone; `to` a
    date includes that day), as µs, within the times a job may hold."""

    def __init__(self, *, end_of_day: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs)
        schema = self.parent
        zone = ZoneInfo(schema.timezone() if getattr(schema, "timezone", None) else "UTC")
        try:
            us = parse_instant(text, zone, end_of_day=self.end_of_day)
            problem = time_outside_window(from_micros(us), latest_submitted_at(schema.clock())
                                          if getattr(schema, "clock", None) else None)
        except (ValueError, OverflowError) as exc:
            raise ValidationError(str(exc)) from None
        if problem:
            raise ValidationError(problem)
        return us


class _TimeWindowQuery(Schema):
    """`from` and `to` within the times a job may hold (commands.job_reports: 1970-01-01 to a
    day after the server's clock), so every bound converts to µs and back."""

    since = _Instant(end_of_day=False, data_key="from", metadata={
        "description": "ISO 8601 with offset, 1970 on, or a date alone (YYYY-MM-DD, a day in the site's time zone)"})
    until = _Instant(end_of_day=True, data_key="to", metadata={
        "description": "ISO 8601 with offset, at most one day after the server's time, or a date alone "
                       "(that whole day included)"})

    def __init__(self, clock: Callable[[], int] | None = None, timezone: Callable[[], str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.timezone = timezone


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
    pages = fields.Integer(required=True, metadata={"description": "impressions per copy (= impressions_per_copy)"})
    impressions_per_copy = fields.Integer(required=True, metadata={"description": "printed page sides of one copy"})
    copies = fields.Integer(required=True)
    impressions = fields.Integer(required=True, metadata={"description": "printed page sides, all copies"})
    sheets = fields.Integer(required=True, metadata={"description": "sheets of paper, all copies"})
    colour_pages = fields.Integer(required=True, metadata={"description": "colour impressions per copy"})
    colour_impressions = fields.Integer(required=True, metadata={"description": "colour impressions, all copies"})
    duplex = fields.Boolean(required=True)
    paper = fields.String(required=True)
    size = fields.Integer(required=True)
    pdl = fields.String(required=True)
    cost = fields.String(required=True, allow_none=True, metadata={
        "description": "what the job costs; null for a job never charged (denied, expired or deleted). Only "
                       "tracked and printed jobs are charged; a held job shows what it will cost "
                       "(docs/secure-release.md)"})
    status = fields.String(required=True, validate=validate.OneOf(tuple(STATUS_NAMES.values())))
    uncertain = fields.String(metadata={
        "description": "present when the agent could not be sure of the pages or the colour: what and why "
                       "(unknown colour is priced as the server's unknown_colour_charge setting says)"})
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
    day = fields.String(metadata={"description": "YYYY-MM-DD, a day in the site's time zone"})
    jobs = fields.Integer(required=True)
    impressions = fields.Integer(required=True, metadata={"description": "printed page sides, all copies"})
    sheets = fields.Integer(required=True)
    colour_impressions = fields.Integer(required=True)
    mono_impressions = fields.Integer(required=True)
    cost = fields.String(required=True)


class DeniedTotalSchema(Schema):
    """Denied jobs of one group: never charged, so no cost."""

    user = fields.String()
    printer = fields.String()
    day = fields.String()
    jobs = fields.Integer(required=True)
    impressions = fields.Integer(required=True)


class UsageReplySchema(Schema):
    group_by = fields.String(required=True, validate=validate.OneOf(GROUPS))
    timezone = fields.String(required=True)
    totals = fields.List(fields.Nested(UsageTotalSchema), required=True)
    grand_total = fields.Nested(UsageTotalSchema, required=True)
    denied = fields.List(fields.Nested(DeniedTotalSchema), required=True)


def _own_user(req: falcon.Request, requested: str | None) -> str | None:
    principal = req.context.principal
    return principal.subject if principal.role == "user" else requested


def job_filter(req: falcon.Request, q: dict[str, Any], **more: Any) -> JobFilter:
    """The read model's filter from a loaded JobQuerySchema (the API's and the console's): a
    `user` caller is bound to their own jobs whatever they asked for. The schema has already
    made `since` and `until` instants in µs (a date alone: a day in the site's time zone)."""
    return JobFilter(
        user=_own_user(req, q.get("user")), printer=q.get("printer"),
        since=q.get("since"), until=q.get("until"),
        before_seq=q.get("cursor"), limit=q["limit"], **more,
    )


NEVER_CHARGED = frozenset({"denied", "expired", "deleted"})


def job_json(r: JobRow) -> dict[str, Any]:
    return {
        "job": r.seq, "user": r.user, "printer": r.printer, "client_host": r.client_host,
        "document": r.document, "submitted_at": from_micros(r.submitted_at).isoformat(),
        "pages": r.pages, "impressions_per_copy": r.pages, "copies": r.copies, "impressions": r.pages * r.copies,
        "sheets": r.sheets, "colour_pages": r.colour_pages, "colour_impressions": r.colour_pages * r.copies,
        "duplex": r.duplex, "paper": r.paper,
        "size": r.size, "pdl": r.pdl,
        "cost": None if r.denied or r.status in NEVER_CHARGED else format_money(r.cost),
        "status": r.status,  # tracked, denied; on secure queues held, released, printed, failed, expired, deleted
        # true when the recorded time lay outside 1970..9999 and `submitted_at` shows the nearest
        **({"submitted_at_clamped": True} if r.submitted_at_clamped else {}),
        **({"uncertain": r.uncertain} if r.uncertain else {}),
    }


def usage_json(row: dict[str, Any], group_by: str) -> dict[str, Any]:
    return {group_by: str(row[group_by]), "jobs": int(row["jobs"]), "impressions": int(row["impressions"]),
            "sheets": int(row["sheets"]), "colour_impressions": int(row["colour_impressions"]),
            "mono_impressions": int(row["mono_impressions"]), "cost": format_money(int(row["cost"]))}


class JobListResource:
    roles = READ_ROLES
    openapi = {"get": Operation("Tracked and denied jobs, newest first, keyset paged (users: their own only)",
                                query=JobQuerySchema, responses={200: "A page of jobs and the next cursor"},
                                reply=JobPageSchema)}

    def __init__(self, reader: sa.Engine, clock: Callable[[], int], site_settings: SiteSettingsReader) -> None:
        self.reader = reader
        self.schema = JobQuerySchema(clock, lambda: str(site_settings["timezone"]))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        f = job_filter(req, load(self.schema, dict(req.params)))
        with self.reader.connect() as conn:
            page, cursor = list_jobs(conn, f)
        resp.media = {"jobs": [job_json(r) for r in page], "next_cursor": cursor}


class UsageResource:
    roles = READ_ROLES
    openapi = {"get": Operation("Usage totals grouped by user, printer or day (users: their own only)",
                                query=UsageQuerySchema, responses={200: "Totals"}, reply=UsageReplySchema)}

    def __init__(self, reader: sa.Engine, clock: Callable[[], int], site_settings: SiteSettingsReader) -> None:
        self.reader = reader
        self.site_settings = site_settings
        self.schema = UsageQuerySchema(clock, self._timezone)

    def _timezone(self) -> str:
        return str(self.site_settings["timezone"])

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = load(self.schema, dict(req.params))
        group_by = q["group_by"]
        own = _own_user(req, None)
        p = ReportParameters(since=q.get("since", 0), until=q.get("until", LATEST_US), timezone=self._timezone(),
                             user=own, own_only=own is not None, group_by=group_by)
        with self.reader.connect() as conn:
            usage, denied = grouped_usage(conn, p, resolve_scope(conn, p), group_by)
        grand = {group_by: "total", **{c: usage[c].sum() for c in usage.columns if c != group_by}} if len(usage) \
            else {group_by: "total", **dict.fromkeys(("jobs", "impressions", "sheets", "colour_impressions",
                                                      "mono_impressions", "cost"), 0)}
        resp.media = {"group_by": group_by, "timezone": p.timezone,
                      "totals": [usage_json(r, group_by) for r in usage.to_dict("records")],
                      "grand_total": usage_json(grand, group_by),
                      "denied": [{group_by: str(r[group_by]), "jobs": int(r["denied_jobs"]),
                                  "impressions": int(r["denied_impressions"])} for r in denied.to_dict("records")]}
