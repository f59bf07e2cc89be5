"""The report catalogue on generated jobs whose figures are computed in advance by plain
arithmetic (tests/report_data.py), on SQLite and PostgreSQL, at periods that cut days and a
month's end in UTC and in Europe/Paris."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from commands.jobs import TrackJobs
from domain.costs import CostSchedule
from domain.units import to_micros
from projections.report_period import ReportInputError, parse_parameters
from projections.reports import CATALOGUE, ReportSources, run_report, shown_document
from tests.conftest import STORES, new_database_url
from tests.report_data import DENIED, DEPARTMENTS, SCHEDULES, batch, expected, generate

NOW = to_micros(datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
JOBS = generate()


@pytest.fixture(scope="module", params=STORES)
def seeded(request, tmp_path_factory):
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings

    tmp = tmp_path_factory.mktemp(f"reports-{request.param}")
    url = new_database_url(request.param, tmp, request)
    rt = build_runtime(Settings.load(environ={}, database_url=url, data_dir=tmp / "var"))
    rt.licensing.install_trial()
    for printer, (mono, colour, discount) in SCHEDULES.items():
        rt.set_cost_schedule(printer, CostSchedule(mono_page=mono, colour_page=colour, duplex_discount_pct=discount))
    for login, department in DEPARTMENTS.items():
        rt.add_local_user(login=login, password=f"{login}-pw-4567", role="user", profile={"department": department})
    gated = TrackJobs(rt.app, rt.printers, gate=rt.licensing.gate_jobs)
    outcomes = [o for i in range(0, len(JOBS), 100) for o in gated(batch(JOBS[i:i + 100]))]
    assert [o.status for o in outcomes] == ["denied" if j.denied else "tracked" for j in JOBS]
    rt.catch_up()
    yield rt
    rt.close()


def sources(rt, **overrides):
    return ReportSources(settings=lambda: {**rt.site_settings.values(), **overrides}, schedule_of=rt.printers.schedule_of)


def run(rt, name, now=NOW, **params):
    p = parse_parameters({k: str(v) for k, v in params.items()}, site_timezone=params.get("timezone", "UTC"), now=now,
                         allowed=CATALOGUE[name].parameters)
    return run_report(rt.reader, name, p, sources(rt))


def rows(section, key):
    measures = ("jobs", "impressions", "sheets", "colour_impressions", "mono_impressions", "cost")
    return {r[key]: {m: int(r[m]) for m in measures} for r in section.frame.to_dict("records")}


def us(text: str) -> int:
    return to_micros(datetime.fromisoformat(text))


PERIODS = [
    # (from, to, timezone, the same period in µs)
    ("2026-11-27T00:00:00Z", "2026-12-01T09:00:00Z", "UTC", us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00")),
    ("2026-11-28T18:28:00Z", "2026-11-30T23:00:00Z", "UTC", us("2026-11-28T18:28:00+00:00"), us("2026-11-30T23:00:00+00:00")),
    ("2026-11-28T23:59:59.999999Z", "2026-12-01T00:00:00.000001Z", "UTC", us("2026-11-28T23:59:59.999999+00:00"),
     us("2026-12-01T00:00:00.000001+00:00")),
    # dates alone: days in the site's time zone; `to` a date is the end of that day
    ("2026-11-28", "2026-11-30", "UTC", us("2026-11-28T00:00:00+00:00"), us("2026-12-01T00:00:00+00:00")),
    ("2026-11-28", "2026-11-30", "Europe/Paris", us("2026-11-27T23:00:00+00:00"), us("2026-11-30T23:00:00+00:00")),
    ("2026-12-01", "2026-12-01", "Europe/Paris", us("2026-11-30T23:00:00+00:00"), us("2026-12-01T23:00:00+00:00")),
]


@pytest.mark.parametrize("since,until,tz,since_us,until_us", PERIODS)
@pytest.mark.parametrize("group_by", ["user", "printer", "department", "day", "month"])
def test_usage_is_exact_at_every_boundary(seeded, since, until, tz, since_us, until_us, group_by):
    key = {"user": lambda j: j.user, "printer": lambda j: j.printer,
           "department": lambda j: DEPARTMENTS.get(j.user, "(none)"),
           "day": lambda j: datetime.fromtimestamp(j.at / 1e6, tz=timezone.utc).astimezone(_zone(tz)).strftime("%Y-%m-%d"),
           "month": lambda j: datetime.fromtimestamp(j.at / 1e6, tz=timezone.utc).astimezone(_zone(tz)).strftime("%Y-%m")}
    report = run(seeded, "usage", **{"from": since, "to": until, "timezone": tz, "group_by": group_by})
    want = expected(JOBS, since_us, until_us, key[group_by])
    assert rows(report.section("usage"), group_by) == want
    grand = expected(JOBS, since_us, until_us)["all"]
    assert report.section("usage").totals == grand
    denied = expected(JOBS, since_us, until_us, key[group_by], denied=True)
    got = {r[group_by]: (r["denied_jobs"], r["denied_impressions"]) for r in report.section("denied").frame.to_dict("records")}
    assert got == {k: (v["jobs"], v["impressions"]) for k, v in denied.items()}
    assert "cost" not in report.section("denied").frame.columns  # denied jobs never carry a cost


def _zone(name):
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)


def test_a_month_end_cut_in_paris_splits_the_months(seeded):
    report = run(seeded, "usage", **{"from": "2026-11-01", "to": "2026-12-31", "timezone": "Europe/Paris",
                                     "group_by": "month"})
    paris = lambda j: datetime.fromtimestamp(j.at / 1e6, tz=timezone.utc).astimezone(_zone("Europe/Paris")).strftime("%Y-%m")
    want = expected(JOBS, us("2026-10-31T23:00:00+00:00"), us("2026-12-31T23:00:00+00:00"), paris)
    assert rows(report.section("usage"), "month") == want
    # the job at 2026-11-30T23:00:00Z is December in Paris, November in UTC
    assert set(want) == {"2026-11", "2026-12"}


def test_filters_by_colour_document_type_user_and_department(seeded):
    since, until = us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00")
    base = {"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"}
    colour = run(seeded, "usage", **base, colour="colour", group_by="printer")
    want = expected([j for j in JOBS if j.colour_pages > 0], since, until, lambda j: j.printer)
    assert rows(colour.section("usage"), "printer") == want
    pdl = run(seeded, "usage", **base, document_type="unknown", group_by="user")
    assert rows(pdl.section("usage"), "user") == expected([j for j in JOBS if j.pdl == "unknown"], since, until,
                                                          lambda j: j.user)
    lab = run(seeded, "user-printing-summary", **base, department="Lab")
    assert set(lab.section("users").frame["user"]) == {"cat", "dan"}
    assert lab.section("users").totals["cost"] == expected([j for j in JOBS if j.user in ("cat", "dan")],
                                                           since, until)["all"]["cost"]


def test_named_summaries_and_largest_jobs(seeded):
    since, until = us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00")
    base = {"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"}
    users = run(seeded, "user-printing-summary", **base).section("users").frame.set_index("user")
    assert users.loc["ann", "department"] == "Sales" and users.loc["eve", "department"] == "(none)"
    for login in DENIED:
        assert users.loc[login, "jobs"] == 0 and users.loc[login, "cost"] == 0
        assert users.loc[login, "denied_jobs"] == sum(1 for j in JOBS if j.user == login and since <= j.at < until)
    printers = run(seeded, "printer-usage-summary", **base).section("printers")
    assert rows(printers, "printer") == expected(JOBS, since, until, lambda j: j.printer)
    largest = run(seeded, "largest-jobs", **base, limit=5).section("jobs").frame
    want = sorted((j for j in JOBS if since <= j.at < until), key=lambda j: -j.impressions)[:5]
    assert list(largest["impressions"]) == [j.impressions for j in want]
    assert all(largest.loc[largest.status == "denied", "cost"].isna())  # a denied job shows no cost
    plist = run(seeded, "printer-list", **base).section("printers").frame.set_index("printer")
    assert plist.loc["lab-colour", "colour_price"] == 6000 and plist.loc["lab-colour", "duplex_discount_pct"] == 10
    ulist = run(seeded, "user-list", **base).section("users").frame.set_index("user")
    assert ulist.loc["cat", "department"] == "Lab"


def test_savings_use_each_printers_schedule(seeded):
    since, until = us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00")
    report = run(seeded, "savings", **{"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"})
    frame = report.section("savings").frame.set_index("measure")
    tracked = [j for j in JOBS if not j.denied and since <= j.at < until]
    duplex_sheets = sum(j.sheets - (j.pages + 1) // 2 * j.copies for j in tracked if not j.duplex and j.pages > 1)
    assert frame.iloc[0]["sheets_saved"] == duplex_sheets
    from dataclasses import replace
    duplex_money = sum(j.cost - replace(j, duplex=True).cost for j in tracked if not j.duplex and j.pages > 1)
    assert frame.iloc[0]["cost_saved"] == duplex_money
    mono_money = sum(j.cost - replace(j, colour_pages=0).cost for j in tracked if j.colour_pages)
    assert frame.iloc[1]["cost_saved"] == mono_money
    repeated = frame.iloc[3]
    assert repeated["jobs_affected"] >= 1  # ann's budget.xlsx two minutes apart


def test_environment_shows_factors_and_their_sources(seeded):
    since, until = us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00")
    report = run(seeded, "environment", **{"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"})
    impact = report.section("impact").frame.set_index("measure")["value"]
    sheets = expected(JOBS, since, until)["all"]["sheets"]
    assert impact["sheets"] == sheets
    assert impact["trees"] == round(sheets / 8333, 4)
    assert impact["CO2e"] == round(sheets * 12.7 / 1000, 3)
    assert all("PaperCut" in f["source"] or "SavaPage" in f["source"] or "A4" in f["source"] for f in report.factors)


def test_habits_workflow_and_licence(seeded):
    base = {"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"}
    habits = run(seeded, "habits", **base)
    assert habits.section("hours").totals["jobs"] == habits.section("weekdays").totals["jobs"] == habits.section(
        "sizes").totals["jobs"]
    workflow = run(seeded, "workflow-issues", **base)
    assert "budget.xlsx" in set(workflow.section("repeated").frame["document"])
    assert set(workflow.section("no_seat").frame["user"]) == set(DENIED)
    licence = run(seeded, "licence-usage", **base)
    assert len(licence.section("seats").frame) == 5


def test_document_names_follow_the_privacy_setting():
    assert shown_document("thesis draft.pdf", "mask") == "*.pdf"
    assert shown_document("noextension", "mask") == "*"
    assert shown_document("a.pdf", "omit") == ""


@pytest.mark.parametrize("params,field", [
    ({"from": "2026-12-01", "to": "2026-11-01"}, "to"),
    ({"from": "0001-01-01"}, "from"),
    ({"from": "2026-11-01T00:00:00"}, "from"),  # a time without an offset
    ({"from": "2026-02-30"}, "from"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"group_by": "planet"}, "group_by"),
    ({"colour": "sepia"}, "colour"),
    ({"limit": "0"}, "limit"),
    ({"limit": "٣"}, "limit"),
    ({"user": "a\x00b"}, "user"),
    ({"from": "1990-01-01", "to": "2026-01-01"}, "to"),  # longer than ten years
    ({"colour_mode": "x"}, "colour_mode"),
])
def test_bad_parameters_name_their_field(params, field):
    with pytest.raises(ReportInputError) as caught:
        parse_parameters(params, site_timezone="UTC", now=NOW, allowed=CATALOGUE["usage"].parameters)
    assert field in caught.value.errors


def test_unknown_users_and_printers_are_named(seeded):
    for field in ("user", "printer", "department"):
        with pytest.raises(ReportInputError) as caught:
            run(seeded, "usage", **{field: "nobody-here"})
        assert field in caught.value.errors
