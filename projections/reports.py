"""The report catalogue: every report's queries, computed with pandas over the read models.

One place for the logic that the API (api/report_catalogue.py), the scheduled reports
(workers/scheduled_reports.py) and the web console's report pages share; renderers
(projections/report_formats.py) turn a `Report` into JSON, CSV, XLSX, PDF or HTML.

Words used in every output, defined once:
- **impressions**: printed page sides of all copies (`impressions_per_copy` × copies), the
  figure a job is priced on; **colour_impressions** likewise; **mono_impressions** the rest.
- **sheets**: sheets of paper, all copies (two impressions to a sheet when duplex).
- **cost**: what the job was charged when it was tracked, with its printer's schedule then.
- **denied** jobs (refused, e.g. for lack of a licence seat) are never in usage figures: they
  are counted apart, and carry no cost.

Exact at every boundary: whole UTC days inside the period come from `usage_daily` and the
partial days at either edge from the `jobs` rows, to the microsecond; a report grouped by day,
week or month in a time zone other than UTC, or filtered by colour or document type, reads
only `jobs` rows (grouped in the database by quarter-hour, the finest grain any time zone's
offset takes, and placed on local days here). No figure is ever rounded to a day silently.
A printed held job is placed by both sources at the instant it printed (see `_usage_parts`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from domain.costs import CostSchedule
from domain.printers import release_queue_name
from domain.units import MICROS_PER_DAY, first_day_from, iso
from projections.jobs import (JOB_DELETED, JOB_DENIED, JOB_EXPIRED, JOB_FAILED, JOB_HELD, JOB_PRINTED, JOB_RELEASED,
                              JOB_TRACKED, STATUS_NAMES, held_jobs, jobs)
from projections.licence_seats import licence_seats, licence_state, seat_denials
from projections.names import application_keys, host_keys, printer_keys, user_keys
from projections.report_period import (
    GROUPINGS, PDLS, TIME_GROUPINGS, ReportInputError, ReportParameters,
)
from projections.printer_errors import errors_between
from projections.seat_tenures import allowance_changes, seats_by_day, tenures_between
from projections.savings_daily import (FIGURES, REPEAT_MINUTES, SPAN_US, dirty_spans, read_sums, saving_figures,
                                       savings_daily)
from projections.usage_daily import usage_daily
from projections.users import users

QUARTER_HOUR_US = 900 * 1_000_000
FIRST_WINDOW_US = 3600 * 1_000_000  # the job list's first window of time (first_jobs)
QUARTERS_PER_DAY = 96
MEASURES = ("jobs", "impressions", "sheets", "colour_impressions", "mono_impressions", "cost")
MONEY_COLUMNS = frozenset({"cost", "cost_saved", "mono_price", "colour_price"})
TIME_COLUMNS = frozenset({"submitted_at", "assigned_at", "first_job", "last_job", "denied_at", "taken_at", "released_at",
                          "started_at", "ended_at"})
UTC_NAMES = ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu")

# Where each environmental factor comes from (shown in the report beside its value).
FACTOR_SOURCES = {
    "report_sheets_per_tree": "PaperCut NG/MF environmental impact: 8,333 sheets of office paper a tree",
    "report_co2e_grams_per_sheet": "PaperCut NG/MF environmental impact: 12.7 g CO2e a sheet (paper and printing)",
    "report_energy_wh_per_sheet": ("SavaPage environmental impact: 12.5 Wh a sheet. PaperCut publishes no energy "
                                   "factor; SavaPage's is the only one among the anchors, and it covers making "
                                   "the paper, which dominates a sheet's energy"),
    "report_paper_grams_per_sheet": "A4 (0.06237 m2) at 80 g/m2: 4.99 g",
}


# --- what a report is -----------------------------------------------------------------------

@dataclass
class Section:
    """One table of a report: its rows (a DataFrame, money in 1/10,000 units, times in µs) and
    the grand totals of its measure columns (None when totals mean nothing, e.g. a list)."""

    name: str
    title: str
    frame: pd.DataFrame
    totals: dict[str, Any] | None = None
    note: str = ""


@dataclass(frozen=True)
class Chart:
    """A chart a person would rather look at: `kind` bar, barh, line or pie, drawn from
    `section`'s column `y` against column `x`."""

    name: str
    title: str
    kind: str
    section: str
    x: str
    y: tuple[str, ...]


@dataclass
class Report:
    name: str
    title: str
    parameters: ReportParameters
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    factors: list[dict[str, Any]] = field(default_factory=list)
    charts: tuple[Chart, ...] = ()

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)


@dataclass(frozen=True)
class ReportSources:
    """What reports read besides the read models, injected by the composition root: the site
    settings in force and each printer's cost schedule (commands.printers.PrinterCache)."""

    settings: Callable[[], Mapping[str, Any]]
    schedule_of: Callable[[str], CostSchedule]


@dataclass(frozen=True)
class Scope:
    """The filters resolved to read-model ids (None: no filter on that key)."""

    user_ids: tuple[int, ...] | None
    printer_ids: tuple[int, ...] | None
    colour: str | None
    pdl: str | None
    # SQLite only: the first and last job's time (see `_job_where`).
    span: tuple[int, int] | None = None

    @property
    def daily_allowed(self) -> bool:
        """usage_daily holds users and printers only: colour and document type need job rows."""
        return self.colour is None and self.pdl is None


# --- resolving filters ----------------------------------------------------------------------

def _ids(conn: sa.Connection, table: sa.Table, column: sa.Column, value: str, field_name: str,
         what: str) -> tuple[int, ...]:
    found = conn.execute(sa.select(table.c.id).where(sa.func.lower(column) == value.lower())).scalars().all()
    if not found:
        raise ReportInputError({field_name: [f"no {what} {value[:80]!r} has printed"]})
    return tuple(found)


def resolve_scope(conn: sa.Connection, p: ReportParameters) -> Scope:
    user_ids: tuple[int, ...] | None = None
    if p.user is not None and p.own_only:
        user_ids = tuple(conn.execute(sa.select(user_keys.c.id).where(
            sa.func.lower(user_keys.c.login) == p.user.lower())).scalars())
    elif p.user is not None:
        user_ids = _ids(conn, user_keys, user_keys.c.login, p.user, "user", "user")
    if p.department is not None:
        logins = conn.execute(sa.select(users.c.login_key).where(
            sa.func.lower(users.c.department) == p.department.lower())).scalars().all()
        if not logins:
            raise ReportInputError({"department": [f"no user is in the department {p.department[:80]!r}"]})
        ids = conn.execute(sa.select(user_keys.c.id).where(sa.func.lower(user_keys.c.login).in_(logins))).scalars()
        dept = tuple(ids)
        user_ids = tuple(set(dept) & set(user_ids)) if user_ids is not None else dept
    printer_ids: tuple[int, ...] | None = None
    for key, value in (("printer", p.printer), ("queue", p.queue)):
        if value is not None:
            ids = _ids(conn, printer_keys, printer_keys.c.name, value, key, "printer queue")
            printer_ids = tuple(set(ids) & set(printer_ids)) if printer_ids is not None else ids
    span = None
    if conn.dialect.name == "sqlite":
        first, last = conn.execute(sa.select(sa.func.min(jobs.c.submitted_at), sa.func.max(jobs.c.submitted_at))).one()
        span = (int(first), int(last)) if first is not None else None
    return Scope(user_ids, printer_ids, p.colour, p.document_type, span)


def _reads_most_jobs(scope: Scope, since: int, until: int) -> bool:
    """Whether [since, until) spans more than a quarter of the time the jobs span (SQLite only).
    SQLite keeps no histogram, so it reads a period through ix_jobs_submitted_at however much of
    the table the period holds: a row fetched by rowid for every entry, several times slower
    than reading the table straight through once most of it is wanted (1,000,000 jobs: 5.9 s
    against 0.4 s)."""
    if scope.span is None:
        return False
    first, last = scope.span
    return (min(until, last + 1) - max(since, first)) * 4 > (last + 1 - first)


CHARGED = "charged"  # tracked jobs, and held jobs once printed (secure release): what usage counts


def _job_where(scope: Scope, since: int, until: int, status: int | str | None = CHARGED) -> list[Any]:
    j = jobs.c
    # `submitted_at + 0` is the same instant that no index can serve: SQLite then reads the table.
    at = j.submitted_at + 0 if status != JOB_DENIED and _reads_most_jobs(scope, since, until) else j.submitted_at
    where: list[Any] = [at >= since, at < until, *_scope_where(scope)]
    if status == CHARGED:
        where.append(j.status.in_([sa.literal(JOB_TRACKED, literal_execute=True),
                                   sa.literal(JOB_PRINTED, literal_execute=True)]))
    elif status is not None:
        # Inline, not a bound parameter: only a literal `status = 1` lets SQLite and a generic
        # PostgreSQL plan use the partial index of denied jobs (ix_jobs_denied_at).
        where.append(j.status == sa.literal(status, literal_execute=True))
    return where


def _scope_where(scope: Scope) -> list[Any]:
    j = jobs.c
    where: list[Any] = []
    if scope.user_ids is not None:
        where.append(j.user_id.in_(scope.user_ids))
    if scope.printer_ids is not None:
        where.append(j.printer_id.in_(scope.printer_ids))
    if scope.colour == "colour":
        where.append(j.colour_pages > 0)
    elif scope.colour == "mono":
        where.append(j.colour_pages == 0)
    if scope.pdl is not None:
        where.append(j.pdl == scope.pdl)
    return where


def _daily_where(scope: Scope, first_day: int, end_day: int) -> list[Any]:
    u = usage_daily.c
    where: list[Any] = [u.day >= first_day, u.day < end_day]
    if scope.user_ids is not None:
        where.append(u.user_id.in_(scope.user_ids))
    if scope.printer_ids is not None:
        where.append(u.printer_id.in_(scope.printer_ids))
    return where


# --- usage: the one aggregation every usage report is built on --------------------------------

def _usage_parts(conn: sa.Connection, p: ReportParameters, scope: Scope, key: str) -> pd.DataFrame:
    """Totals of charged jobs by `key` ("user_id", "printer_id" or "quarter": quarter-hours since
    the epoch), exact over [since, until): whole UTC days from usage_daily when the scope
    allows, the edges (and everything else) from the jobs rows.

    A held job is charged when it printed, which is when usage_daily counts it: its row is found
    by its time of printing (held_jobs.printed_at), every other job's by its time of sending. So
    a held job sent on one day and printed on another is counted once, wherever the period's
    edges fall."""
    j, h = jobs.c, held_jobs.c
    parts: list[pd.DataFrame] = []
    first_day, end_day = first_day_from(p.since), p.until // MICROS_PER_DAY
    # usage_daily has UTC days: placed on local days it would misplace the hours between
    # midnights, so a time grouping in another zone reads job rows (see the module's note).
    daily = scope.daily_allowed and first_day < end_day and (key != "quarter" or p.timezone in UTC_NAMES)
    sent_key = {"user_id": j.user_id, "printer_id": j.printer_id, "quarter": j.submitted_at // QUARTER_HOUR_US}[key]
    printed_key = {"user_id": j.user_id, "printer_id": j.printer_id, "quarter": h.printed_at // QUARTER_HOUR_US}[key]
    job_cols = [sa.func.count().label("jobs"), sa.func.sum(j.pages * j.copies).label("impressions"),
                sa.func.sum(j.sheets).label("sheets"), sa.func.sum(j.colour_pages * j.copies).label("colour_impressions"),
                sa.func.sum(j.cost).label("cost")]
    ranges = [(p.since, first_day * MICROS_PER_DAY), (end_day * MICROS_PER_DAY, p.until)] if daily else [(p.since, p.until)]
    for since, until in ranges:
        if since >= until:
            continue
        sent = (sa.select(sent_key.label("key"), *job_cols).where(*_job_where(scope, since, until, JOB_TRACKED))
                .group_by(sent_key))
        printed = (sa.select(printed_key.label("key"), *job_cols)
                   .select_from(held_jobs.join(jobs, j.seq == h.seq))
                   .where(h.printed_at >= since, h.printed_at < until, *_scope_where(scope)).group_by(printed_key))
        for q in (sent, printed):
            parts.append(pd.DataFrame(conn.execute(q).all(), columns=["key", "jobs", "impressions", "sheets",
                                                                      "colour_impressions", "cost"]))
    if daily:
        u = usage_daily.c
        day_key = {"user_id": u.user_id, "printer_id": u.printer_id, "quarter": u.day * QUARTERS_PER_DAY}[key]
        q = (sa.select(day_key.label("key"), sa.func.sum(u.jobs), sa.func.sum(u.pages), sa.func.sum(u.sheets),
                       sa.func.sum(u.colour_pages), sa.func.sum(u.cost))
             .where(*_daily_where(scope, first_day, end_day)).group_by(day_key))
        parts.append(pd.DataFrame(conn.execute(q).all(), columns=["key", "jobs", "impressions", "sheets",
                                                                  "colour_impressions", "cost"]))
    frame = pd.concat([f for f in parts if not f.empty] or [parts[0] if parts else _empty_usage()])
    frame = frame.astype({c: "int64" for c in ("jobs", "impressions", "sheets", "colour_impressions", "cost")})
    frame = frame.groupby("key", as_index=False, sort=True).sum()
    frame["mono_impressions"] = frame["impressions"] - frame["colour_impressions"]
    return frame


def _empty_usage() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64") for c in ("key", "jobs", "impressions", "sheets",
                                                                "colour_impressions", "cost")})


def _denied_parts(conn: sa.Connection, p: ReportParameters, scope: Scope, key: str) -> pd.DataFrame:
    """Denied jobs by key: jobs, impressions and sheets they would have taken; never a cost."""
    j = jobs.c
    job_key = {"user_id": j.user_id, "printer_id": j.printer_id, "quarter": j.submitted_at // QUARTER_HOUR_US}[key]
    q = (sa.select(job_key.label("key"), sa.func.count(), sa.func.sum(j.pages * j.copies), sa.func.sum(j.sheets))
         .where(*_job_where(scope, p.since, p.until, JOB_DENIED)).group_by(job_key))
    frame = pd.DataFrame(conn.execute(q).all(), columns=["key", "denied_jobs", "denied_impressions", "denied_sheets"])
    return frame.astype({c: "int64" for c in ("denied_jobs", "denied_impressions", "denied_sheets")})


def _names(conn: sa.Connection, table: sa.Table, column: sa.Column, ids: Sequence[int]) -> dict[int, str]:
    if not len(ids):
        return {}
    return dict(conn.execute(sa.select(table.c.id, column).where(table.c.id.in_([int(i) for i in ids]))).all())


def _departments(conn: sa.Connection) -> dict[str, tuple[str, str]]:
    """(full name, department) by lower-cased login, from the users read model."""
    return {r.login_key: (r.full_name, r.department or "(none)") for r in conn.execute(
        sa.select(users.c.login_key, users.c.full_name, users.c.department).order_by(users.c.imported_at))}


def _time_labels(quarters: pd.Series, tz: str, grain: str) -> pd.Series:
    local = pd.to_datetime(quarters.astype("int64") * 900, unit="s", utc=True).dt.tz_convert(tz)
    if grain == "day":
        return local.dt.strftime("%Y-%m-%d")
    if grain == "week":  # ISO weeks, named by their Monday
        monday = local.dt.normalize().dt.tz_localize(None) - pd.to_timedelta(local.dt.weekday, unit="D")
        return monday.dt.strftime("%Y-%m-%d")
    return local.dt.strftime("%Y-%m")


def _totals(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, int]:
    return {c: int(frame[c].sum()) if c in frame and len(frame) else 0 for c in columns}


def grouped_usage(conn: sa.Connection, p: ReportParameters, scope: Scope, group_by: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(usage, denied) grouped by any of GROUPINGS, keyed by a column named after the grouping."""
    if group_by not in GROUPINGS:
        raise ReportInputError({"group_by": [f"one of: {', '.join(GROUPINGS)}"]})
    key = {"user": "user_id", "department": "user_id", "printer": "printer_id", "queue": "printer_id"}.get(
        group_by, "quarter")
    usage, denied = _usage_parts(conn, p, scope, key), _denied_parts(conn, p, scope, key)
    frames = []
    for frame, cols in ((usage, list(MEASURES)), (denied, ["denied_jobs", "denied_impressions", "denied_sheets"])):
        if key == "user_id":
            logins = _names(conn, user_keys, user_keys.c.login, frame["key"].unique())
            labels = frame["key"].map(logins)
            if group_by == "department":
                people = _departments(conn)
                labels = labels.map(lambda login: people.get(str(login).lower(), ("", "(none)"))[1])
        elif key == "printer_id":
            labels = frame["key"].map(_names(conn, printer_keys, printer_keys.c.name, frame["key"].unique()))
        else:
            labels = _time_labels(frame["key"], p.timezone, group_by) if len(frame) else frame["key"].astype(str)
        out = frame.assign(**{group_by: labels.astype(str) if len(frame) else pd.Series(dtype=str)})[[group_by, *cols]]
        frames.append(out.groupby(group_by, as_index=False, sort=True).sum())
    return frames[0], frames[1]


# --- the reports ----------------------------------------------------------------------------

def usage_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    usage, denied = grouped_usage(conn, p, scope, p.group_by)
    charts: list[Chart] = []
    if p.group_by in TIME_GROUPINGS:
        charts.append(Chart("usage_over_time", f"Impressions by {p.group_by}", "bar", "usage", p.group_by,
                            ("mono_impressions", "colour_impressions")))
    else:
        charts.append(Chart(f"top_{p.group_by}s", f"Top {p.group_by}s by impressions", "barh", "usage", p.group_by,
                            ("impressions",)))
    charts.append(Chart("colour_vs_mono", "Colour and mono impressions", "pie", "colour_mono", "kind", ("impressions",)))
    totals = _totals(usage, MEASURES)
    mix = pd.DataFrame({"kind": ["mono", "colour"],
                        "impressions": [totals["mono_impressions"], totals["colour_impressions"]]})
    return Report("usage", f"Usage by {p.group_by}", p, [
        Section("usage", f"Tracked jobs by {p.group_by}", usage, totals),
        Section("denied", "Denied jobs (never charged, not in the usage figures)", denied,
                _totals(denied, ("denied_jobs", "denied_impressions", "denied_sheets"))),
        Section("colour_mono", "Colour and mono impressions", mix, None),
    ], notes=[_grain_note(p, scope), unknown_colour_note(src.settings())], charts=tuple(charts))


def unknown_colour_note(settings: Mapping[str, Any]) -> str:
    """How jobs whose colour the agent could not tell are charged: the site setting, in words."""
    charge = str(settings.get("unknown_colour_charge", "colour"))
    how = ("every page at the colour price" if charge == "colour" else
           "as the agent reported them: its colour pages at the colour price, the rest mono")
    return (f"Jobs whose colour the agent could not tell are charged {how} (site setting unknown_colour_charge = "
            f"{charge}); each job's cost is as priced when it was tracked.")


def _grain_note(p: ReportParameters, scope: Scope) -> str:
    if p.group_by in TIME_GROUPINGS and p.timezone not in UTC_NAMES or not scope.daily_allowed:
        return "Exact to the microsecond: read from every job row of the period."
    return ("Exact to the microsecond: whole UTC days from the daily totals, the partial days at either end "
            "of the period from the job rows.")


def user_summary_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    usage, denied = grouped_usage(conn, p, scope, "user")
    frame = usage.merge(denied, on="user", how="outer").fillna(0)
    people = _departments(conn)
    frame.insert(1, "full_name", frame["user"].map(lambda u: people.get(u.lower(), ("", ""))[0]))
    frame.insert(2, "department", frame["user"].map(lambda u: people.get(u.lower(), ("", "(none)"))[1]))
    frame = frame.astype({c: "int64" for c in (*MEASURES, "denied_jobs", "denied_impressions", "denied_sheets")})
    frame = frame.sort_values(["impressions", "user"], ascending=[False, True], kind="stable")
    return Report("user-printing-summary", "User Printing summary", p, [
        Section("users", "Each user's printing", frame.reset_index(drop=True),
                _totals(frame, (*MEASURES, "denied_jobs", "denied_impressions")))],
        notes=[_grain_note(replace_group(p, "user"), scope), unknown_colour_note(src.settings())],
        charts=(Chart("top_users", "Top users by impressions", "barh", "users", "user", ("impressions",)),))


def replace_group(p: ReportParameters, group_by: str) -> ReportParameters:
    return replace(p, group_by=group_by)


def printer_summary_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    usage, denied = grouped_usage(conn, p, scope, "printer")
    frame = usage.merge(denied, on="printer", how="outer").fillna(0)
    frame = frame.astype({c: "int64" for c in (*MEASURES, "denied_jobs", "denied_impressions", "denied_sheets")})
    frame = frame.sort_values(["impressions", "printer"], ascending=[False, True], kind="stable")
    return Report("printer-usage-summary", "Printer Usage summary", p, [
        Section("printers", "Each printer's use", frame.reset_index(drop=True),
                _totals(frame, (*MEASURES, "denied_jobs", "denied_impressions")))],
        notes=[_grain_note(replace_group(p, "printer"), scope), unknown_colour_note(src.settings())],
        charts=(Chart("top_printers", "Top printers by impressions", "barh", "printers", "printer", ("impressions",)),))


def shown_document(name: str, mode: str) -> str:
    """A document name as the privacy setting `document_names` lets reports show it."""
    if mode == "omit":
        return ""
    if mode == "mask":
        base = name.rsplit("/", 1)[-1]
        ext = base.rsplit(".", 1)[1] if "." in base and not base.endswith(".") else ""
        return f"*.{ext[:16]}" if ext else "*"
    return name


def _job_select() -> sa.Select:
    j = jobs.c
    return (sa.select(j.seq.label("job"), j.submitted_at, user_keys.c.login.label("user"),
                      printer_keys.c.name.label("printer"), host_keys.c.name.label("client_host"), j.document,
                      j.pages.label("impressions_per_copy"), j.copies, (j.pages * j.copies).label("impressions"),
                      (j.colour_pages * j.copies).label("colour_impressions"), j.sheets, j.duplex, j.paper, j.pdl,
                      j.size, j.status, j.cost)
            .select_from(jobs.join(user_keys, user_keys.c.id == j.user_id)
                         .join(printer_keys, printer_keys.c.id == j.printer_id)
                         .join(host_keys, host_keys.c.id == j.host_id)))


JOB_COLUMNS = ("job", "submitted_at", "user", "printer", "client_host", "document", "impressions_per_copy", "copies",
               "impressions", "colour_impressions", "sheets", "duplex", "paper", "pdl", "size", "status", "cost")


def _job_frame(rows: Sequence[Any], privacy: str) -> pd.DataFrame:
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(JOB_COLUMNS))
    frame["document"] = frame["document"].map(lambda d: shown_document(d, privacy))
    frame["duplex"] = frame["duplex"].astype(bool)
    frame["status"] = frame["status"].map(lambda s: STATUS_NAMES.get(s, "tracked"))
    # A denied job was never charged: its cost is shown empty, never as an amount.
    frame["cost"] = frame["cost"].where(frame["status"].isin(("tracked", "printed", "held", "released", "failed")),
                                        None)
    return frame


def largest_jobs_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    j = jobs.c
    q = _job_select().where(*_job_where(scope, p.since, p.until, None)).order_by(
        (j.pages * j.copies).desc(), j.seq).limit(p.limit)
    frame = _job_frame(conn.execute(q).all(), str(src.settings().get("document_names", "keep")))
    return Report("largest-jobs", f"The {p.limit} largest jobs", p, [
        Section("jobs", "Largest jobs by impressions (all copies)", frame, None)])


def printer_list_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    usage, _ = grouped_usage(conn, p, scope, "printer")
    names = conn.execute(sa.select(printer_keys.c.name).order_by(printer_keys.c.name)).scalars().all()
    if scope.printer_ids is not None:
        names = list(_names(conn, printer_keys, printer_keys.c.name, scope.printer_ids).values())
    rows = []
    for name in sorted(names):
        s = src.schedule_of(name)
        rows.append({"printer": name, "mono_price": s.mono_page, "colour_price": s.colour_page,
                     "duplex_discount_pct": s.duplex_discount_pct})
    frame = pd.DataFrame(rows, columns=["printer", "mono_price", "colour_price", "duplex_discount_pct"])
    frame = frame.merge(usage[["printer", "jobs", "impressions", "cost"]], on="printer", how="left").fillna(0)
    frame = frame.astype({c: "int64" for c in ("mono_price", "colour_price", "duplex_discount_pct", "jobs",
                                               "impressions", "cost")})
    return Report("printer-list", "Printer list", p, [
        Section("printers", "Every printer queue, its prices per impression and its use in the period", frame,
                _totals(frame, ("jobs", "impressions", "cost")))])


def user_list_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    usage, _ = grouped_usage(conn, p, scope, "user")
    q = sa.select(users.c.login, users.c.full_name, users.c.department, users.c.role, users.c.active,
                  users.c.source, users.c.deactivated_reason).where(users.c.deactivated_reason != "removed")
    if p.user is not None:
        q = q.where(users.c.login_key == p.user.lower())
    if p.department is not None:
        q = q.where(sa.func.lower(users.c.department) == p.department.lower())
    frame = pd.DataFrame(conn.execute(q.order_by(users.c.login_key)).all(),
                         columns=["user", "full_name", "department", "role", "active", "source", "inactive_reason"])
    frame["active"] = frame["active"].astype(bool)
    usage = usage.assign(key=usage["user"].str.lower())[["key", "jobs", "impressions", "cost"]]
    frame = frame.assign(key=frame["user"].str.lower()).merge(usage, on="key", how="left").drop(columns="key")
    frame[["jobs", "impressions", "cost"]] = frame[["jobs", "impressions", "cost"]].fillna(0).astype("int64")
    return Report("user-list", "User list", p, [
        Section("users", "Every user the directory knows, with their use in the period", frame,
                _totals(frame, ("jobs", "impressions", "cost")))])


SIZE_BINS = ((1, 1), (2, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, 500), (501, None))


def _habit_groups(conn: sa.Connection, where: Sequence[Any], sets: Sequence[str]) -> dict[str, list[tuple]]:
    """The period's jobs grouped by each of `sets` (quarter, impressions, pdl, document, app_id) and not
    at all ("all"): rows of (key, jobs, impressions, colour jobs, duplex jobs, colour
    impressions, duplex impressions).

    Impressions, pdl and "all" come from one grouping by (pdl, impressions), a few hundred rows
    summed here; quarter, document and app_id take a query each. Each is a hash aggregate over parallel
    scans on PostgreSQL; GROUPING SETS in one pass were slower there (1.0 s against 0.3–0.4 s a
    grouping at 1,000,000 jobs), as they run in one process."""
    j = jobs.c
    impressions = j.pages * j.copies
    base = sa.select((j.submitted_at // QUARTER_HOUR_US).label("quarter"), impressions.label("impressions"),
                     j.pdl, j.document, j.app_id, sa.case((j.colour_pages > 0, 1), else_=0).label("colour_job"),
                     sa.case((j.duplex, 1), else_=0).label("duplex_job"),
                     (j.colour_pages * j.copies).label("colour_impressions"),
                     sa.case((j.duplex, impressions), else_=0).label("duplex_impressions")).where(*where).subquery()
    b = base.c
    measures = (sa.func.count(), sa.func.sum(b.impressions), sa.func.sum(b.colour_job), sa.func.sum(b.duplex_job),
                sa.func.sum(b.colour_impressions), sa.func.sum(b.duplex_impressions))
    out: dict[str, list[tuple]] = {}
    kinds = [(pdl, size, *map(int, rest)) for pdl, size, *rest in
             conn.execute(sa.select(b.pdl, b.impressions, *measures).group_by(b.pdl, b.impressions))]
    for name, pick in (("pdl", lambda r: r[0]), ("impressions", lambda r: r[1]), ("all", lambda r: None)):
        sums: dict[Any, list[int]] = {}
        for row in kinds:
            acc = sums.setdefault(pick(row), [0] * 6)
            for i, v in enumerate(row[2:]):
                acc[i] += v
        out[name] = [(k, *v) for k, v in sums.items()] or ([(None, 0, 0, 0, 0, 0, 0)] if name == "all" else [])
    for name in sets:
        if name not in out:
            out[name] = [tuple(r) for r in conn.execute(sa.select(b[name], *measures).group_by(b[name]))]
    return out


def habits_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    privacy = str(src.settings().get("document_names", "keep"))
    sets = ("quarter", "impressions", "pdl", "app_id", *(() if privacy == "omit" else ("document",)))
    groups = _habit_groups(conn, _job_where(scope, p.since, p.until), sets)
    by_quarter = pd.DataFrame([(k, n, i) for k, n, i, *_ in groups["quarter"]],
                              columns=["quarter", "jobs", "impressions"]).astype("int64")
    local = pd.to_datetime(by_quarter["quarter"] * 900, unit="s", utc=True).dt.tz_convert(p.timezone)
    hours = by_quarter.assign(hour=local.dt.hour).groupby("hour")[["jobs", "impressions"]].sum()
    hours = hours.reindex(range(24), fill_value=0).reset_index()
    days = by_quarter.assign(weekday=local.dt.weekday).groupby("weekday")[["jobs", "impressions"]].sum()
    days = days.reindex(range(7), fill_value=0).reset_index()
    days["weekday"] = days["weekday"].map(dict(enumerate(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                                          "Saturday", "Sunday"))))
    mix = pd.DataFrame([row[1:] for row in groups["all"]],
                       columns=["jobs", "impressions", "colour_jobs", "duplex_jobs", "colour_impressions",
                                "duplex_impressions"]).fillna(0).astype("int64")
    m = mix.iloc[0]
    shares = pd.DataFrame([
        {"measure": "colour share of jobs", "count": int(m.colour_jobs), "of": int(m.jobs)},
        {"measure": "colour share of impressions", "count": int(m.colour_impressions), "of": int(m.impressions)},
        {"measure": "duplex share of jobs", "count": int(m.duplex_jobs), "of": int(m.jobs)},
        {"measure": "duplex share of impressions", "count": int(m.duplex_impressions), "of": int(m.impressions)},
    ])
    shares["percent"] = [round(100 * c / o, 2) if o else 0.0 for c, o in zip(shares["count"], shares["of"])]
    raw = pd.DataFrame([(k, n) for k, n, *_ in groups["impressions"]], columns=["impressions", "jobs"]).astype("int64")
    size_rows = []
    for low, high in SIZE_BINS:
        sel = raw[(raw.impressions >= low) & ((raw.impressions <= high) if high else True)]
        size_rows.append({"impressions": f"{low}" if low == high else (f"{low}-{high}" if high else f"{low} or more"),
                          "jobs": int(sel.jobs.sum())})
    zero = raw[raw.impressions == 0]
    if len(zero):
        size_rows.insert(0, {"impressions": "0", "jobs": int(zero.jobs.sum())})
    sizes = pd.DataFrame(size_rows)
    sections = [Section("shares", "Colour and duplex", shares, None),
                Section("hours", f"Busiest hours ({p.timezone})", hours, _totals(hours, ("jobs", "impressions"))),
                Section("weekdays", f"Busiest weekdays ({p.timezone})", days, _totals(days, ("jobs", "impressions"))),
                Section("sizes", "Job sizes (impressions, all copies)", sizes, _totals(sizes, ("jobs",)))]
    if privacy == "omit":
        sections.append(Section("documents", "Top documents", pd.DataFrame(columns=["document", "jobs", "impressions"]),
                                None, note="Document names are omitted by the privacy setting (document_names)."))
    else:
        docs = pd.DataFrame([(k, n, i) for k, n, i, *_ in groups["document"]], columns=["document", "jobs", "impressions"])
        docs["document"] = docs["document"].map(lambda d: shown_document(d, privacy))
        docs = docs.groupby("document", as_index=False).sum().sort_values(
            ["jobs", "impressions", "document"], ascending=[False, False, True], kind="stable").head(p.limit)
        sections.append(Section("documents", "Top documents", docs.reset_index(drop=True), None,
                                note="masked: only the extension is shown" if privacy == "mask" else ""))
    pdl = pd.DataFrame(sorted((k, n, i) for k, n, i, *_ in groups["pdl"]), columns=["document_type", "jobs", "impressions"])
    sections.append(Section("document_types", "Page-description languages (document types)", pdl,
                            _totals(pdl, ("jobs", "impressions")),
                            note="The agent records the PDL a job's pages were counted in. Jobs migrated from a "
                                 "legacy database show as 'legacy'."))
    apps = _application_names(conn, groups["app_id"])
    sections.append(Section("applications", "Applications jobs were printed from", apps,
                            _totals(apps, ("jobs", "impressions")),
                            note="As the agent read it from the job: the macOS print dialog's application, else "
                                 "the document's own Creator/Producer (PDF) or %%Creator (PostScript), version "
                                 "numbers cut off; 'unknown' when the job does not tell (PCL, raster, text, "
                                 "encrypted PDF) and for jobs recorded before applications were."))
    return Report("habits", "Printing habits", p, sections, charts=(
        Chart("busiest_hours", "Jobs by hour of day", "bar", "hours", "hour", ("jobs",)),
        Chart("busiest_weekdays", "Jobs by weekday", "bar", "weekdays", "weekday", ("jobs",)),
    ))


UNKNOWN_APPLICATION_NAME = "unknown"


def _application_names(conn: sa.Connection, rows: Sequence[tuple]) -> pd.DataFrame:
    """Jobs and impressions by application name, most jobs first, from rows of (app_id, jobs,
    impressions, ...); app_id 0 (not known) is "unknown"."""
    names = _names(conn, application_keys, application_keys.c.name, [int(k) for k, *_ in rows if k])
    frame = pd.DataFrame([(names.get(int(k), UNKNOWN_APPLICATION_NAME) if k else UNKNOWN_APPLICATION_NAME,
                           int(n), int(i or 0)) for k, n, i, *_ in rows],
                         columns=["application", "jobs", "impressions"])
    frame = frame.groupby("application", as_index=False).sum()
    return frame.sort_values(["jobs", "impressions", "application"], ascending=[False, False, True],
                             kind="stable").reset_index(drop=True)


def _previous_print(conn: sa.Connection, since: int, until: int, scope: Scope, *columns: Any) -> sa.Subquery:
    """The charged jobs of [since, until) (`columns` of them, with submitted_at and document) and
    `before`: when the same user last printed the same document in [since, until) (NULL the
    first time). `_is_repeat` tells a repeated print from it.

    One sort of the range's jobs, by user and document: the window a repeat needs. On PostgreSQL
    the document is compared bytewise (COLLATE "C": equality is the same, the sort several times
    cheaper than the locale's). Measured on a loaded 2-core machine, the default work_mem with
    parallel workers sorting in runs beat a work_mem big enough for one in-memory sort."""
    j = jobs.c
    document = j.document.collate("C") if conn.dialect.name == "postgresql" else j.document
    return (sa.select(*columns, j.submitted_at, j.document,
                      sa.func.lag(j.submitted_at).over(partition_by=(j.user_id, document),
                                                       order_by=(j.submitted_at, j.seq)).label("before"))
            .where(*_job_where(scope, since, until)).subquery())


def _is_repeat(inner: sa.Subquery, minutes: int) -> Any:
    """A named document the same user printed before in the period, at most `minutes` before."""
    return sa.and_(inner.c.document != "", inner.c.before.is_not(None),
                   inner.c.submitted_at - inner.c.before <= minutes * 60 * 1_000_000)


@dataclass(frozen=True)
class _SumsGrain:
    """The whole spans (quarters of a UTC day, SPAN_US) [first, end) of a period, which a report
    of every user reads from the savings sums (savings_daily), the filter on them, and the printers
    to keep of each span's sums (a printer filter; None: all).
    `dirty`: the spans among them still to be recounted (savings_dirty), read from the rows
    like the edges, as [start, end) µs ranges; `where` leaves them out of the sums."""

    first: int
    end: int
    where: tuple[Any, ...]
    printers: tuple[int, ...] | None = None
    dirty: tuple[tuple[int, int], ...] = ()

    @property
    def start_us(self) -> int:
        return self.first * SPAN_US

    @property
    def end_us(self) -> int:
        return self.end * SPAN_US

    def settled(self, at: Any) -> Any:
        """SQL: the µs time `at` lies in none of the dirty ranges."""
        return sa.and_(sa.true(), *(sa.or_(at < lo, at >= hi) for lo, hi in self.dirty))


def _sums_grain(p: ReportParameters, scope: Scope, conn: sa.Connection | None = None) -> _SumsGrain:
    """With `conn`, the dirty spans are looked up (one small query) and left out of `where`."""
    s = savings_daily.c
    first, end = -(-p.since // SPAN_US), p.until // SPAN_US
    where = [s.span >= first, s.span < end]
    dirty: list[tuple[int, int]] = []
    if conn is not None and first < end:
        spans = dirty_spans(conn, first, end)
        if spans:
            where.append(s.span.not_in(spans))
        for span in spans:
            if dirty and dirty[-1][1] == span * SPAN_US:
                dirty[-1] = (dirty[-1][0], (span + 1) * SPAN_US)
            else:
                dirty.append((span * SPAN_US, (span + 1) * SPAN_US))
    printers = None if scope.printer_ids is None else tuple(scope.printer_ids)
    return _SumsGrain(first, end, tuple(where), printers, tuple(dirty))


def _sums_allowed(p: ReportParameters, scope: Scope) -> bool:
    """The sums hold every user (a report of some users reads their rows, ix_jobs_user_seq: a
    few thousand a month each), and no colour or document type."""
    grain = _sums_grain(p, scope)
    return scope.user_ids is None and scope.daily_allowed and grain.first < grain.end


def _repeats_from_sums(p: ReportParameters, scope: Scope, minutes: int) -> bool:
    """Whether the repeated prints of whole spans can come from the savings sums: they
    hold the default window, for every printer (a print's previous one may be on another
    printer, so a printer filter, which hides it, needs the rows), and no colour or document
    type filter."""
    return _sums_allowed(p, scope) and scope.printer_ids is None and minutes == REPEAT_MINUTES


def _repeat_sums(conn: sa.Connection, p: ReportParameters, scope: Scope, minutes: int,
                 use_sums: bool = True) -> list[tuple[int, int, int, int]]:
    """The repeated prints of the period by printer: (printer_id, prints, sheets, cost).

    A print is a repeat when the same user printed the same document before *in the period*, at
    most `minutes` before. From the savings sums for whole spans (`_sums_grain`) when
    `_repeats_from_sums`: those sums found each print's previous one across all time, so the
    prints of the period's first `minutes` whose previous one was before the period are taken off
    again (read from the rows around the start); the partial edges are read from the rows, the
    last one with the `minutes` before it, where its prints' previous ones may be."""
    j = jobs.c
    window = minutes * 60 * 1_000_000

    def from_rows(since: int, until: int, *where: Any) -> list[tuple[int, int, int, int]]:
        if since >= until:
            return []
        inner = _previous_print(conn, since, until, scope, j.printer_id, j.sheets, j.cost)
        k = inner.c
        return [(int(pid), int(n), int(sheets or 0), int(cost or 0)) for pid, n, sheets, cost in conn.execute(
            sa.select(k.printer_id, sa.func.count(), sa.func.sum(k.sheets), sa.func.sum(k.cost))
            .where(_is_repeat(inner, minutes), *(w(k) for w in where)).group_by(k.printer_id))]

    if not (use_sums and _repeats_from_sums(p, scope, minutes)):  # use_sums False: the rows only (tests)
        return sorted(from_rows(p.since, p.until))
    grain = _sums_grain(p, scope, conn)
    start, end = grain.start_us, grain.end_us
    parts = [(printer, *values[-3:])
             for _, printer, _, _, values in read_sums(conn, *grain.where, printers=grain.printers) if values[-3]]
    parts += from_rows(p.since, start)
    parts += from_rows(end - window, p.until, lambda k: k.submitted_at >= end)
    for lo, hi in grain.dirty:  # spans still to be recounted: read like an edge
        parts += from_rows(max(lo - window, p.since), hi, lambda k, lo=lo: k.submitted_at >= lo)
    if p.since + window > start:  # whole-unit prints whose previous print was before the period
        parts += [(pid, -n, -sheets, -cost) for pid, n, sheets, cost in from_rows(
            p.since - window, min(p.since + window, end), lambda k: k.submitted_at >= start,
            lambda k: k.before < p.since, lambda k: grain.settled(k.submitted_at))]
    sums: dict[int, list[int]] = {}
    for pid, n, sheets, cost in parts:
        t = sums.setdefault(pid, [0, 0, 0])
        t[0] += n
        t[1] += sheets
        t[2] += cost
    return [(pid, *t) for pid, t in sorted(sums.items()) if t[0]]


def _repeat_window_notes(minutes: int) -> list[str]:
    if minutes == REPEAT_MINUTES:
        return []
    return [f"Repeated prints within {minutes} minutes are found among every job of the period: the daily sums "
            f"hold the default window of {REPEAT_MINUTES} minutes only, so this report takes longer over long periods."]


def _when(condition: Any, value: Any) -> Any:
    return sa.func.sum(sa.case((condition, value), else_=0))


def _saving_sums(conn: sa.Connection, p: ReportParameters, scope: Scope, use_sums: bool = True) -> list[tuple[Any, ...]]:
    """Per printer, paper and duplex, what each measure touches, in exact integers:
    (printer_id, paper, duplex, duplex n/sheets/mono/colour, mono n/mono/colour, 2-up n/sheets/mono
    now/colour now/mono/colour). Whole spans (six hours) from the savings sums (`_sums_grain`)
    when the scope allows; the edges (and everything else) from the jobs rows counted by kind (printer, paper, duplex,
    pages, colour pages, copies: thousands of kinds, not millions of jobs), each kind's figures
    worked out by the same `saving_figures` the daily sums were made with."""
    j = jobs.c
    daily = use_sums and _sums_allowed(p, scope)  # use_sums False: the rows only (tests)
    grain = _sums_grain(p, scope, conn if daily else None)
    # The edges, and the spans still to be recounted, from the rows.
    ranges = [(p.since, grain.start_us), *grain.dirty, (grain.end_us, p.until)] if daily else [(p.since, p.until)]
    frames = []
    for since, until in ranges:
        if since >= until:
            continue
        kinds = pd.DataFrame(conn.execute(
            sa.select(j.printer_id, j.paper, j.duplex, j.pages, j.colour_pages, j.copies, sa.func.count(),
                      sa.func.sum(j.sheets))
            .where(*_job_where(scope, since, until))
            .group_by(j.printer_id, j.paper, j.duplex, j.pages, j.colour_pages, j.copies)).all(),
            columns=["printer_id", "paper", "duplex", "pages", "colour_pages", "copies", "n", "sheets"])
        if len(kinds):
            figures = saving_figures(kinds["pages"], kinds["colour_pages"], kinds["copies"],
                                     kinds["duplex"].astype(bool), kinds["n"], kinds["sheets"])
            frames.append(pd.DataFrame({"printer_id": kinds["printer_id"], "paper": kinds["paper"],
                                        "duplex": kinds["duplex"].astype(bool), **figures}))
    if daily:
        rows = [(printer, paper, duplex, *values[:len(FIGURES)])
                for _, printer, paper, duplex, values in read_sums(conn, *grain.where, printers=grain.printers)]
        if rows:
            frame = pd.DataFrame(rows, columns=["printer_id", "paper", "duplex", *FIGURES])
            frames.append(frame.astype({"duplex": bool, **{c: "int64" for c in FIGURES}}))
    if not frames:
        return []
    sums = pd.concat(frames).groupby(["printer_id", "paper", "duplex"], as_index=False, sort=True).sum()
    return [(int(row[0]), row[1], bool(row[2]), *map(int, row[3:])) for row in sums.itertuples(index=False)]


def savings_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    """What duplex by default, mono by default, 2-up or never repeating a print would have saved,
    priced with each printer's own cost schedule (the one in force now).

    The database counts the period's jobs by kind (printer, paper, duplex, pages, colour pages,
    copies: thousands of rows, not millions), `_saving_sums` works out what each measure changes
    for each kind in exact integers, and the prices are applied here to the sums by printer,
    paper and duplex. A duplex discount is therefore rounded once for each printer and paper,
    not once a job (the two differ by at most 1/10,000 a job). The repeated prints take one
    window over the period's jobs, summed by printer in the database (`_previous_print`)."""
    scope = resolve_scope(conn, p)
    minutes = int(src.settings().get("report_repeat_minutes", 10))
    groups = _saving_sums(conn, p, scope)
    repeated = _repeat_sums(conn, p, scope, minutes)
    printers = _names(conn, printer_keys, printer_keys.c.name,
                      list({g[0] for g in groups} | {int(r[0]) for r in repeated}))
    schedules = {pid: src.schedule_of(name) for pid, name in printers.items()}
    saved = {m: [0, 0, 0] for m in ("duplex", "mono", "2-up", "repeats")}  # jobs affected, sheets, money
    by_printer: dict[str, list[int]] = {}
    for (printer_id, paper, duplex, d_n, d_sheets, d_mono, d_colour, m_n, m_mono, m_colour,
         u_n, u_sheets, u_mono_now, u_colour_now, u_mono, u_colour) in groups:
        s = schedules[printer_id]
        mono_price, colour_price = s.by_paper.get(paper, (s.mono_page, s.colour_page))

        def charged(mono: int, col: int, on_duplex: bool) -> int:
            total = int(mono or 0) * mono_price + int(col or 0) * colour_price
            if on_duplex and s.duplex_discount_pct:
                total = (total * (100 - s.duplex_discount_pct) + 50) // 100
            return total

        row = by_printer.setdefault(printers[printer_id], [0, 0, 0, 0, 0, 0])
        duplex_money = charged(d_mono, d_colour, False) - charged(d_mono, d_colour, True)
        mono_money = charged(m_mono, m_colour, bool(duplex)) - charged(int(m_mono or 0) + int(m_colour or 0), 0,
                                                                       bool(duplex))
        up_money = charged(u_mono_now, u_colour_now, bool(duplex)) - charged(u_mono, u_colour, bool(duplex))
        for key, n, sheets, money in (("duplex", d_n, d_sheets, duplex_money), ("mono", m_n, 0, mono_money),
                                      ("2-up", u_n, u_sheets, up_money)):
            saved[key][0] += int(n or 0)
            saved[key][1] += int(sheets or 0)
            saved[key][2] += int(money or 0)
        row[0] += int(d_sheets or 0)
        row[1] += duplex_money
        row[2] += mono_money
        row[3] += int(u_sheets or 0)
        row[4] += up_money
    for printer_id, n, sheets, cost in repeated:  # a repeated print would have saved all it was charged
        saved["repeats"] = [saved["repeats"][0] + int(n), saved["repeats"][1] + int(sheets or 0),
                            saved["repeats"][2] + int(cost or 0)]
        by_printer.setdefault(printers[int(printer_id)], [0, 0, 0, 0, 0, 0])[5] += int(cost or 0)
    measures = {"duplex": "Duplex by default", "mono": "Mono by default", "2-up": "2-up (two pages a side)",
                "repeats": f"No repeats within {minutes} min"}
    frame = pd.DataFrame([{"measure": measures[k], "jobs_affected": v[0], "sheets_saved": v[1], "cost_saved": v[2]}
                          for k, v in saved.items()])
    per_printer = pd.DataFrame([{"printer": k, "duplex_sheets_saved": v[0], "duplex_cost_saved": v[1],
                                 "mono_cost_saved": v[2], "two_up_sheets_saved": v[3], "two_up_cost_saved": v[4],
                                 "repeats_cost_saved": v[5]} for k, v in sorted(by_printer.items())],
                               columns=["printer", "duplex_sheets_saved", "duplex_cost_saved", "mono_cost_saved",
                                        "two_up_sheets_saved", "two_up_cost_saved", "repeats_cost_saved"])
    usage = _totals(_usage_parts(conn, p, scope, "printer_id"), MEASURES)
    return Report("savings", "Potential savings", p, [
        Section("savings", "What each measure alone would have saved", frame, None,
                note=f"Of {usage['sheets']} sheets and {usage['cost'] / 10_000:.4f} charged in the period. Each "
                     "measure is counted on its own; they do not add up (a duplex job printed 2-up saves less)."),
        Section("by_printer", "By printer, with each printer's own cost schedule", per_printer,
                _totals(per_printer, per_printer.columns[1:])),
    ], notes=["Prices: each printer's cost schedule in force now (per impression, its paper size's prices, its "
              "duplex discount). Sheets and costs of the jobs themselves are as recorded.",
              *_repeat_window_notes(minutes)],
        charts=(Chart("savings", "Potential savings (cost)", "barh", "savings", "measure", ("cost_saved",)),))


def environment_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    settings = src.settings()
    usage = _usage_parts(conn, p, scope, "printer_id")
    sheets = int(usage["sheets"].sum()) if len(usage) else 0
    f = {k: float(settings.get(k, 0)) for k in FACTOR_SOURCES}
    frame = pd.DataFrame([
        {"measure": "sheets", "value": sheets, "unit": "sheets"},
        {"measure": "paper weight", "value": round(sheets * f["report_paper_grams_per_sheet"] / 1000, 3), "unit": "kg"},
        {"measure": "trees", "value": round(sheets / f["report_sheets_per_tree"], 4), "unit": "trees"},
        {"measure": "CO2e", "value": round(sheets * f["report_co2e_grams_per_sheet"] / 1000, 3), "unit": "kg"},
        {"measure": "energy", "value": round(sheets * f["report_energy_wh_per_sheet"] / 1000, 3), "unit": "kWh"},
    ])
    factors = [{"setting": k, "value": f[k], "source": FACTOR_SOURCES[k]} for k in FACTOR_SOURCES]
    return Report("environment", "Environmental impact", p, [
        Section("impact", "Environmental impact of the sheets printed", frame, None),
        Section("factors", "Conversion factors (site settings) and their sources", pd.DataFrame(factors), None),
    ], factors=factors)


def workflow_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    scope = resolve_scope(conn, p)
    settings = src.settings()
    privacy = str(settings.get("document_names", "keep"))
    minutes = int(settings.get("report_repeat_minutes", 10))
    large = int(settings.get("report_large_job_impressions", 500))
    j = jobs.c
    sections: list[Section] = []
    by_printer = _repeat_sums(conn, p, scope, minutes)
    count, all_sheets, all_cost = (sum(r[i] for r in by_printer) for i in (1, 2, 3))
    # The first MAX_ROWS_LISTED repeats: a window over the rows from the period's start to an hour
    # later, then six, then to where the daily sums say enough of them lie, then the whole period,
    # until one holds them all (a window over rows is exact for the prints it ends after).
    ends = [p.until]
    if count > MAX_ROWS_LISTED:
        ends[:0] = [p.since + 3_600_000_000, p.since + 6 * 3_600_000_000]
        if _repeats_from_sums(p, scope, minutes):
            per_span: dict[int, int] = {}
            grain = _sums_grain(p, scope)
            for span, _, _, _, values in read_sums(conn, *grain.where, printers=grain.printers):
                per_span[span] = per_span.get(span, 0) + values[-3]
            seen = 0
            for span, n in sorted(per_span.items()):
                seen += n
                if seen > 2 * MAX_ROWS_LISTED:
                    ends.append((span + 1) * SPAN_US)
                    break
    for hi in sorted({min(end, p.until) for end in ends}):
        inner = _previous_print(conn, p.since, hi, scope, j.seq, j.user_id, j.printer_id, j.sheets, j.cost)
        k = inner.c
        rows = conn.execute(sa.select(k.seq, k.submitted_at, k.user_id, k.printer_id, k.document, k.before, k.sheets,
                                      k.cost).where(_is_repeat(inner, minutes))
                            .order_by(k.submitted_at, k.seq).limit(MAX_ROWS_LISTED)).all()
        if len(rows) == min(count, MAX_ROWS_LISTED):
            break
    repeats = pd.DataFrame([tuple(row) for row in rows],
                           columns=["job", "submitted_at", "user_id", "printer_id", "document", "before", "sheets",
                                    "cost"])
    logins = _names(conn, user_keys, user_keys.c.login, repeats["user_id"].unique())
    printers = _names(conn, printer_keys, printer_keys.c.name, repeats["printer_id"].unique())
    rep = pd.DataFrame({"job": repeats["job"], "submitted_at": repeats["submitted_at"],
                        "user": repeats["user_id"].map(logins), "printer": repeats["printer_id"].map(printers),
                        "document": repeats["document"].map(lambda d: shown_document(d, privacy)),
                        "minutes_after_previous": ((repeats["submitted_at"] - repeats["before"]) / 60e6).round(1),
                        "sheets": repeats["sheets"], "cost": repeats["cost"]})
    sections.append(Section("repeated", f"The same document printed again within {minutes} minutes", rep,
                            {"sheets": all_sheets, "cost": all_cost},
                            note=f"{count} repeated prints" + (f"; the first {MAX_ROWS_LISTED} listed"
                                                               if count > MAX_ROWS_LISTED else "")))
    large_q = _job_select().where(*_job_where(scope, p.since, p.until, None), j.pages * j.copies >= large).order_by(
        j.seq).limit(MAX_ROWS_LISTED)
    sections.append(Section("large", f"Unusually large jobs ({large} impressions or more)",
                            _job_frame(conn.execute(large_q).all(), privacy), None))
    unknown_q = _job_select().where(*_job_where(scope, p.since, p.until, None), j.pdl == "unknown").order_by(
        j.seq).limit(MAX_ROWS_LISTED)
    sections.append(Section("pdl_unknown", "Jobs whose pages the agent could not count (pdl unknown)",
                            _job_frame(conn.execute(unknown_q).all(), privacy), None))
    dq = (sa.select(user_keys.c.login, sa.func.count(), sa.func.sum(j.pages * j.copies), sa.func.min(j.submitted_at),
                    sa.func.max(j.submitted_at))
          .select_from(jobs.join(user_keys, user_keys.c.id == j.user_id))
          .where(*_job_where(scope, p.since, p.until, JOB_DENIED)).group_by(user_keys.c.login).order_by(user_keys.c.login))
    sections.append(Section("no_seat", "Users whose jobs were denied (no licence seat)", pd.DataFrame(
        conn.execute(dq).all(), columns=["user", "denied_jobs", "denied_impressions", "first_job", "last_job"]), None))
    first_day, last_day = p.since // MICROS_PER_DAY, (p.until - 1) // MICROS_PER_DAY
    d = seat_denials.c
    den = pd.DataFrame(conn.execute(sa.select(d.login_key, d.reason, d.at).where(
        d.day >= first_day, d.day <= last_day, d.at >= p.since, d.at < p.until).order_by(d.at)).all(),
        columns=["user", "reason", "denied_at"])
    if p.user is not None:
        den = den[den["user"] == p.user.lower()]
    sections.append(Section("seat_refusals", "Seat refusals recorded in the period (jobs and logins, first a day)",
                            den.reset_index(drop=True), None,
                            note="By the time the licence refused the seat, which for a job sent late by an "
                                 "offline agent can be after the job itself."))
    # Secure release's job states: held jobs expired unreleased, failed releases, deleted, waiting.
    j = jobs.c
    released_states = (JOB_HELD, JOB_RELEASED, JOB_FAILED, JOB_EXPIRED, JOB_DELETED)
    rows = conn.execute(sa.select(j.status, sa.func.count(), sa.func.sum(j.pages * j.copies)).where(
        *_job_where(scope, p.since, p.until, None), j.status.in_(released_states)).group_by(j.status)).all()
    states = pd.DataFrame([(STATUS_NAMES[s], int(n), int(i or 0)) for s, n, i in rows],
                          columns=["state", "jobs", "impressions"])
    sections.append(Section("release", "Held jobs not printed: expired (never released), release failed, deleted, "
                                       "still waiting", states, _totals(states, ("jobs", "impressions")),
                            note="A release refused because its printer was stopped keeps the job held, with the "
                                 "reason on the Secure Print list."))
    sections.append(_printer_errors_section(conn, p))
    return Report("workflow-issues", "Workflow issues", p, sections, notes=[
        f"Lists show at most {MAX_ROWS_LISTED} jobs each; totals count them all.", unknown_colour_note(settings),
        *_repeat_window_notes(minutes)])


MAX_ROWS_LISTED = 1000


def _printer_errors_section(conn: sa.Connection, p: ReportParameters) -> Section:
    """The periods a CUPS printer was in error (stopped, or an error reason) that overlap the
    report's period, as the release service saw them (projections.printer_errors)."""
    wanted = None
    names = [n for n in (p.printer, p.queue) if n is not None]
    if names:  # a secure queue's printer is its release queue on the print server
        wanted = sorted({v for n in names for v in (n.lower(), release_queue_name(n).lower())})
    found = errors_between(conn, p.since, p.until, wanted, limit=MAX_ROWS_LISTED + 1)
    rows = [(e.printer, e.started_at, e.ended_at, e.reasons, e.message,
             round(((e.ended_at if e.ended_at is not None else p.until) - e.started_at) / 60e6, 1),
             round((min(e.ended_at if e.ended_at is not None else p.until, p.until) - max(e.started_at, p.since))
                   / 60e6, 1))
            for e in found[:MAX_ROWS_LISTED]]
    frame = pd.DataFrame(rows, columns=["printer", "started_at", "ended_at", "reasons", "message", "minutes",
                                        "minutes_in_period"])
    frame["ended_at"] = frame["ended_at"].astype("Int64")
    return Section("printer_errors", "Printers in error (stopped, or reporting an error) during the period", frame,
                   {"minutes_in_period": round(float(frame["minutes_in_period"].sum()), 1)} if len(frame) else None,
                   note="As the release service saw them (it asks CUPS every 30 s by default). ended_at empty: "
                        "still in error; its minutes run to the end of the period. minutes: the whole error, "
                        "minutes_in_period: the part inside the period."
                        + (f" The first {MAX_ROWS_LISTED} listed." if len(found) > MAX_ROWS_LISTED else ""))


def licence_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    state = conn.execute(sa.select(licence_state)).mappings().first()
    seats = pd.DataFrame(conn.execute(sa.select(licence_seats.c.login_key, licence_seats.c.assigned_at).order_by(
        licence_seats.c.assigned_at)).all(), columns=["user", "assigned_at"])
    allowed = int(state["seats"]) if state else 0
    held = tenures_between(conn, p.since, p.until)
    days = seats_by_day(held, allowance_changes(conn, p.until), p.since, p.until, ZoneInfo(p.timezone))
    over_time = pd.DataFrame([(d.day, d.seats_max, d.seats_at_end, d.seats_allowed, d.taken, d.released)
                              for d in days],
                             columns=["day", "seats_max", "seats_at_end", "seats_allowed", "taken", "released"])
    tenures = pd.DataFrame([(t.login_key, t.taken_at, t.released_at, t.ended_by) for t in held[:MAX_ROWS_LISTED]],
                           columns=["user", "taken_at", "released_at", "ended_by"])
    tenures["released_at"] = tenures["released_at"].astype("Int64")
    d = seat_denials.c
    den = pd.DataFrame(conn.execute(sa.select(d.at, d.login_key).where(d.at >= p.since, d.at < p.until)).all(),
                       columns=["at", "user"])
    per_day = den.assign(day=pd.to_datetime(den["at"], unit="us", utc=True).dt.tz_convert(p.timezone).dt.strftime(
        "%Y-%m-%d")).groupby("day", as_index=False).agg(denials=("user", "size"), users=("user", "nunique"))
    return Report("licence-usage", "Licence usage", p, [
        Section("seats", f"Who holds each seat now, and since when ({len(seats)} of {allowed} in use)", seats, None),
        Section("seats_over_time", "Seats in use per day: the most held at once, and held at the end of the day; "
                                   "the seats the licence allowed at the end of the day; seats taken and given back",
                over_time, _totals(over_time, ("taken", "released")),
                note="Days in the report's time zone, the first and last cut to the period. A seat given back and "
                     "taken again within the day counts in both taken and released."),
        Section("tenures", "Who held a seat during the period, from when until when", tenures, None,
                note="released_at empty: still held. ended_by: the reason recorded when the seat was given back "
                     "(the user set Inactive, with the reason given; removed: the account was removed)."
                     + (f" The first {MAX_ROWS_LISTED} of {len(held)} listed." if len(held) > MAX_ROWS_LISTED else "")),
        Section("denials", "Denials per day", per_day, _totals(per_day, ("denials",))),
    ], charts=(Chart("seats_over_time", "Seats in use", "line", "seats_over_time", "day",
                     ("seats_max", "seats_allowed")),))


def iter_jobs(engine: sa.Engine, p: ReportParameters, privacy: str, chunk: int = 5000) -> Iterator[pd.DataFrame]:
    """Every job of the period, oldest first, in frames of `chunk` rows, read from a streaming
    cursor: a report over millions of jobs never holds more than one chunk."""
    with engine.connect() as conn:
        scope = resolve_scope(conn, p)
        q = _job_select().where(*_job_where(scope, p.since, p.until, None)).order_by(jobs.c.submitted_at, jobs.c.seq)
        result = conn.execution_options(stream_results=True, yield_per=chunk).execute(q)
        for rows in result.partitions(chunk):
            yield _job_frame(rows, privacy)


def count_jobs(conn: sa.Connection, p: ReportParameters) -> int:
    """How many jobs (tracked and denied) the job list of `p` holds."""
    scope = resolve_scope(conn, p)
    return int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
        *_job_where(scope, p.since, p.until, None))).scalar_one())


def first_jobs(conn: sa.Connection, scope: Scope, since: int, until: int, limit: int) -> list[Any]:
    """The first `limit` jobs of [since, until), oldest first, read in windows of time that start
    at an hour and double. On PostgreSQL the index of job times is BRIN (migration 0014): it finds
    a window's pages but gives no order, so one query over a busy month sorted every job of it to
    return the first 20 (0.8 s at 1,000,000 jobs, where a btree read 20 entries: docs/reports.md).
    A window holds a few hours' jobs; an empty period costs ~17 small queries over ten years."""
    rows: list[Any] = []
    start, width = since, FIRST_WINDOW_US
    while start < until and len(rows) < limit:
        end = min(until, start + width)
        q = (_job_select().where(*_job_where(scope, start, end, None))
             .order_by(jobs.c.submitted_at, jobs.c.seq).limit(limit - len(rows)))
        rows.extend(conn.execute(q).all())
        start, width = end, width * 2
    return rows


def jobs_report(conn: sa.Connection, p: ReportParameters, src: ReportSources) -> Report:
    """The job list, at most `limit` rows (the file formats stream every job: iter_jobs)."""
    scope = resolve_scope(conn, p)
    frame = _job_frame(first_jobs(conn, scope, p.since, p.until, p.limit),
                       str(src.settings().get("document_names", "keep")))
    return Report("jobs", "Jobs", p, [Section("jobs", "Every job of the period, oldest first", frame, None)],
                  notes=["JSON shows the first `limit` jobs; CSV and XLSX carry every job of the period."])


@dataclass(frozen=True)
class ReportSpec:
    name: str
    title: str
    description: str
    parameters: tuple[str, ...]
    run: Callable[[sa.Connection, ReportParameters, ReportSources], Report]
    roles: tuple[str, ...] = ("admin", "auditor", "user")  # user: bound to their own jobs


FILTERS = ("from", "to", "timezone", "user", "department", "printer", "queue", "colour", "document_type")
ORG_ROLES = ("admin", "auditor")

CATALOGUE: dict[str, ReportSpec] = {s.name: s for s in (
    ReportSpec("usage", "Usage", "Jobs, impressions, sheets, colour impressions and cost by user, department, "
               "printer, queue, day, week or month, with grand totals; denied jobs apart", (*FILTERS, "group_by"),
               usage_report),
    ReportSpec("user-printing-summary", "User Printing summary", "Each user's jobs, impressions, sheets and cost, "
               "with their department and denied jobs", FILTERS, user_summary_report),
    ReportSpec("printer-usage-summary", "Printer Usage summary", "Each printer's jobs, impressions, sheets and cost",
               FILTERS, printer_summary_report),
    ReportSpec("largest-jobs", "Largest jobs", "The largest jobs by impressions (all copies)", (*FILTERS, "limit"),
               largest_jobs_report),
    ReportSpec("printer-list", "Printer list", "Every printer queue with its prices and its use", FILTERS,
               printer_list_report, ORG_ROLES),
    ReportSpec("user-list", "User list", "Every user with department, role, state and use", FILTERS,
               user_list_report, ORG_ROLES),
    ReportSpec("habits", "Printing habits", "Colour and duplex shares, busiest hours and weekdays, job sizes, top "
               "documents, document types, applications", (*FILTERS, "limit"), habits_report),
    ReportSpec("savings", "Potential savings", "What duplex, mono, 2-up or no repeated prints would have saved, "
               "with each printer's cost schedule", FILTERS, savings_report),
    ReportSpec("environment", "Environmental impact", "Sheets, paper weight, trees, CO2e and energy, with the "
               "factors and their sources", FILTERS, environment_report),
    ReportSpec("workflow-issues", "Workflow issues", "Repeated documents, unusually large jobs, uncountable jobs, "
               "users denied a seat, held and failed releases", FILTERS, workflow_report, ORG_ROLES),
    ReportSpec("licence-usage", "Licence usage", "Seats in use, who took each and when, denials per day",
               ("from", "to", "timezone"), licence_report, ORG_ROLES),
    ReportSpec("jobs", "Jobs", "Every job of the period (CSV and XLSX stream all of them)", (*FILTERS, "limit"),
               jobs_report),
)}


def run_report(engine: sa.Engine, name: str, p: ReportParameters, src: ReportSources) -> Report:
    spec = CATALOGUE.get(name)
    if spec is None:
        raise ReportInputError({"name": [f"no report {name[:64]!r}; the catalogue: {', '.join(CATALOGUE)}"]})
    with engine.connect() as conn:
        return spec.run(conn, p, src)


def catalogue_json() -> list[dict[str, Any]]:
    return [{"name": s.name, "title": s.title, "description": s.description, "parameters": list(s.parameters),
             "roles": list(s.roles)} for s in CATALOGUE.values()]


def money_value(units: Any) -> Any:
    """Money columns' cells as decimals (1/10,000 units stored), None stays None."""
    if units is None or (isinstance(units, float) and math.isnan(units)):
        return None
    return int(units) / 10_000


def time_value(us: Any) -> Any:
    return iso(int(us)) if us is not None and not (isinstance(us, float) and math.isnan(us)) else None
