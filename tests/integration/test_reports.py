"""The report catalogue on generated jobs whose figures are computed in advance by plain
arithmetic (tests/report_data.py), on SQLite and PostgreSQL, at periods that cut days and a
month's end in UTC and in Europe/Paris."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from domain.units import to_micros
from projections.report_period import ReportInputError, parse_parameters
from projections.reports import CATALOGUE, ReportSources, run_report, shown_document
from tests.conftest import STORES, new_database_url
from tests.report_data import (
    DECIDED_AT, DENIED, DEPARTMENTS, SEATED, SetClock, charged, expected, expected_release_states, generate, habits,
    held_jobs, local_time, repeats, seed, seed_held, two_up,
)

NOW = to_micros(datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
JOBS = generate()
HELD = held_jobs()


@pytest.fixture(scope="module", params=STORES)
def seeded(request, tmp_path_factory):
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings

    tmp = tmp_path_factory.mktemp(f"reports-{request.param}")
    url = new_database_url(request.param, tmp, request)
    rt = build_runtime(Settings.load(environ={}, database_url=url, data_dir=tmp / "var"))
    rt.clock = clock = SetClock(DECIDED_AT)  # seats are taken and refused at a known instant
    seed(rt, JOBS)
    seed_held(rt, HELD, clock)
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
    frame = report.section("savings").frame
    tracked = charged(JOBS, since, until)
    simplex = [j for j in tracked if not j.duplex and j.pages > 1]
    colour = [j for j in tracked if j.colour_pages]
    multi = [j for j in tracked if j.pages > 1]
    again = repeats(JOBS, since, until, minutes=10)
    assert any(j.document == "budget.xlsx" for j in again)  # ann's, two minutes apart
    want = [
        ("Duplex by default", len(simplex), sum(j.sheets - replace(j, duplex=True).sheets for j in simplex),
         sum(j.cost - replace(j, duplex=True).cost for j in simplex)),
        ("Mono by default", len(colour), 0, sum(j.cost - replace(j, colour_pages=0).cost for j in colour)),
        ("2-up (two pages a side)", len(multi), sum(j.sheets - two_up(j).sheets for j in multi),
         sum(j.cost - two_up(j).cost for j in multi)),
        ("No repeats within 10 min", len(again), sum(j.sheets for j in again), sum(j.cost for j in again)),
    ]
    assert [tuple(r) for r in frame[["measure", "jobs_affected", "sheets_saved", "cost_saved"]].itertuples(
        index=False)] == want
    assert all(m > 0 for _, _, _, m in want)  # every measure is exercised by the generated jobs


def test_environment_shows_factors_and_their_sources(seeded):
    since, until = us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00")
    report = run(seeded, "environment", **{"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"})
    impact = report.section("impact").frame.set_index("measure")["value"]
    sheets = expected(JOBS, since, until)["all"]["sheets"]
    assert impact["sheets"] == sheets
    assert impact["trees"] == round(sheets / 8333, 4)
    assert impact["CO2e"] == round(sheets * 12.7 / 1000, 3)
    assert all("PaperCut" in f["source"] or "SavaPage" in f["source"] or "A4" in f["source"] for f in report.factors)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris"])
def test_habits_are_exact_in_the_sites_time_zone(seeded, tz):
    since, until = us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00")
    report = run(seeded, "habits", **{"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z", "timezone": tz})
    want = habits(JOBS, since, until, tz)
    for name in ("shares", "hours", "weekdays", "sizes", "documents", "document_types", "applications"):
        got = [tuple(r) for r in report.section(name).frame.itertuples(index=False)]
        assert got == want[name], name
    assert {a for a, *_ in want["applications"]} == {"LibreOffice", "Mozilla Firefox", "Microsoft\u00ae Word", "unknown"}
    assert report.section("applications").totals["jobs"] == sum(n for _, n, _ in want["applications"])


def test_workflow_issues_list_exactly_the_jobs_in_question(seeded):
    since, until = us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00")
    workflow = run(seeded, "workflow-issues", **{"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"})
    repeated = workflow.section("repeated")
    again = repeats(JOBS, since, until, minutes=10)
    assert sorted(zip(repeated.frame["user"], repeated.frame["document"], repeated.frame["submitted_at"],
                      repeated.frame["sheets"], repeated.frame["cost"])) == sorted(
        (j.user, j.document, j.at, j.sheets, j.cost) for j in again)
    assert repeated.totals == {"sheets": sum(j.sheets for j in again), "cost": sum(j.cost for j in again)}
    in_period = [j for j in JOBS if since <= j.at < until]  # tracked and denied alike
    for name, chosen in (("large", [j for j in in_period if j.impressions >= 500]),
                         ("pdl_unknown", [j for j in in_period if j.pdl == "unknown"])):
        frame = workflow.section(name).frame
        assert sorted(zip(frame["user"], frame["submitted_at"], frame["impressions"], frame["status"])) == sorted(
            (j.user, j.at, j.impressions, "denied" if j.denied else "tracked") for j in chosen), name
        assert len(chosen) > 0, name
    no_seat = workflow.section("no_seat").frame
    want = {login: [j for j in in_period if j.user == login] for login in DENIED}
    assert [tuple(r) for r in no_seat.itertuples(index=False)] == [
        (login, len(js), sum(j.impressions for j in js), min(j.at for j in js), max(j.at for j in js))
        for login, js in sorted(want.items())]
    # no held job was sent in this period
    assert workflow.section("release").frame.empty


def test_a_period_holding_most_jobs_gives_the_same_exact_figures_read_straight_through(seeded):
    """November holds most of the jobs' time span (the held jobs start on 15 October), so SQLite
    reads the table straight through instead of through ix_jobs_submitted_at: same figures."""
    from projections.reports import _reads_most_jobs, resolve_scope

    period = {"from": "2026-11-01", "to": "2026-11-30"}
    since, until = us("2026-11-01T00:00:00+00:00"), us("2026-12-01T00:00:00+00:00")
    p = parse_parameters(period, site_timezone="UTC", now=NOW, allowed=CATALOGUE["usage"].parameters)
    with seeded.reader.connect() as conn:
        scope = resolve_scope(conn, p)
        assert _reads_most_jobs(scope, since, until) is (seeded.reader.dialect.name == "sqlite")
        assert not _reads_most_jobs(scope, us("2026-11-28T00:00:00+00:00"), us("2026-11-29T00:00:00+00:00"))
    usage = run(seeded, "usage", **period, group_by="user")
    assert rows(usage.section("usage"), "user") == expected(JOBS, since, until, lambda j: j.user)
    want = habits(JOBS, since, until, "UTC")
    report = run(seeded, "habits", **period)
    for name in ("shares", "hours", "weekdays", "sizes", "documents", "document_types", "applications"):
        assert [tuple(r) for r in report.section(name).frame.itertuples(index=False)] == want[name], name
    again = repeats(JOBS, since, until, minutes=10)
    savings = run(seeded, "savings", **period).section("savings").frame.set_index("measure")
    assert tuple(savings.loc["No repeats within 10 min", ["jobs_affected", "sheets_saved", "cost_saved"]]) == (
        len(again), sum(j.sheets for j in again), sum(j.cost for j in again))


def test_workflow_issues_list_held_jobs_not_printed_by_state(seeded):
    since, until = us("2026-10-01T00:00:00+00:00"), us("2026-11-01T00:00:00+00:00")
    workflow = run(seeded, "workflow-issues", **{"from": "2026-10-01", "to": "2026-10-31"})
    release = workflow.section("release")
    want = expected_release_states(HELD, since, until)
    assert set(want) == {"held", "released", "failed", "expired", "deleted"}  # printed is not listed
    assert {r.state: (r.jobs, r.impressions) for r in release.frame.itertuples()} == want
    assert len(release.frame) == len(want)
    assert release.totals == {"jobs": sum(n for n, _ in want.values()),
                              "impressions": sum(i for _, i in want.values())}
    # the one that printed is charged; the others never were
    usage = run(seeded, "usage", **{"from": "2026-10-01", "to": "2026-10-31", "group_by": "user"})
    printed = [h.job for h in HELD if h.state == "printed"]
    assert {r["user"]: (r["jobs"], r["impressions"]) for r in usage.section("usage").frame.to_dict("records")} == {
        j.user: (1, j.impressions) for j in printed}
    # a user filter applies to the section too
    bob = run(seeded, "workflow-issues", **{"from": "2026-10-01", "to": "2026-10-31", "user": "bob"})
    assert {r.state: (r.jobs, r.impressions) for r in bob.section("release").frame.itertuples()} == \
        expected_release_states([h for h in HELD if h.job.user == "bob"], since, until)


# The printed held job: sent 10-15 09:20, printed 10-16 08:00 UTC. A period counts it when it
# holds the instant it printed, whichever of its parts (the daily totals' whole days, the job rows
# of its edges, or job rows throughout) holds that instant and whichever holds its sending.
@pytest.mark.parametrize("since,until,params,want", [
    # sent in the partial first day, printed in a whole day (counted twice before)
    ("2026-10-15T09:00:00Z", "2026-10-17T00:00:00Z", {"group_by": "user"}, {"ann": 1}),
    # sent in a whole day, printed in the partial last day (not counted before)
    ("2026-10-15T00:00:00Z", "2026-10-16T09:00:00Z", {"group_by": "user"}, {"ann": 1}),
    # printed in a partial day, sent before the period; and sent in it, printed after it
    ("2026-10-16T07:00:00Z", "2026-10-16T09:00:00Z", {"group_by": "user"}, {"ann": 1}),
    ("2026-10-15T09:00:00Z", "2026-10-16T07:59:59.999999Z", {"group_by": "user"}, {}),
    ("2026-10-16T08:00:00Z", "2026-10-17T00:00:00Z", {"group_by": "user"}, {"ann": 1}),
    # on the day it printed: from the daily totals (UTC), from job rows (another zone, a filter)
    ("2026-10-14T12:00:00Z", "2026-10-18T00:00:00Z", {"group_by": "day"}, {"2026-10-16": 1}),
    ("2026-10-15", "2026-10-16", {"group_by": "day", "timezone": "Europe/Paris"}, {"2026-10-16": 1}),
    ("2026-10-15T09:00:00Z", "2026-10-17T00:00:00Z", {"group_by": "user", "colour": "mono"}, {"ann": 1}),
    ("2026-10-15T09:00:00Z", "2026-10-16T07:00:00Z", {"group_by": "user", "colour": "mono"}, {}),
])
def test_a_held_job_printed_the_next_day_is_counted_once_when_it_printed(seeded, since, until, params, want):
    [printed] = [h.job for h in HELD if h.state == "printed"]
    usage = run(seeded, "usage", **{"from": since, "to": until, **params})
    frame = usage.section("usage").frame
    assert {r[params["group_by"]]: r["jobs"] for r in frame.to_dict("records")} == want
    assert usage.section("usage").totals["impressions"] == (printed.impressions if want else 0)
    # the other reports built on the same totals agree
    summary = run(seeded, "user-printing-summary", **{"from": since, "to": until,
                                                      **{k: v for k, v in params.items() if k != "group_by"}})
    assert summary.section("users").totals["jobs"] == len(want)


def test_a_held_job_is_in_the_daily_totals_on_the_day_it_printed_not_the_day_it_was_sent(seeded):
    """The daily aggregate itself (what GET /api/v1/usage and the whole days of every usage
    report read) holds the held job on the day it printed; the job list keeps its sending time."""
    from domain.units import day_of
    from projections.usage_daily import usage_totals
    from tests.report_data import HELD_PRINTED, HELD_SENT

    [printed] = [h.job for h in HELD if h.state == "printed"]
    assert day_of(HELD_SENT) + 1 == day_of(HELD_PRINTED)  # sent one day, printed the next
    with seeded.reader.connect() as conn:
        days = {t.key: (t.jobs, t.pages, t.cost) for t in usage_totals(
            conn, "day", user=printed.user, since_day=day_of(HELD_SENT) - 1, until_day=day_of(HELD_PRINTED) + 2)}
    assert days == {day_of(HELD_PRINTED): (1, printed.impressions, printed.impressions * 500)}  # the vault's price
    jobs = run(seeded, "jobs", **{"from": "2026-10-15", "to": "2026-10-16", "user": printed.user})
    frame = jobs.section("jobs").frame
    assert list(frame[frame["status"] == "printed"]["submitted_at"]) == [printed.at]
    assert day_of(printed.at) == day_of(HELD_SENT)


def test_licence_usage_shows_each_seat_and_each_denial(seeded):
    licence = run(seeded, "licence-usage", **{"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"})
    seats = licence.section("seats").frame
    assert sorted(zip(seats["user"], seats["assigned_at"])) == [(u, DECIDED_AT) for u in sorted(SEATED)]
    day = local_time(DECIDED_AT, "UTC").strftime("%Y-%m-%d")
    # every day of the period: the five seats taken on the first, held on every later one
    assert [tuple(r) for r in licence.section("seats_over_time").frame.itertuples(index=False)] == [
        (day, len(SEATED), len(SEATED), 5, len(SEATED), 0), ("2026-11-28", 5, 5, 5, 0, 0),
        ("2026-11-29", 5, 5, 5, 0, 0), ("2026-11-30", 5, 5, 5, 0, 0), ("2026-12-01", 5, 5, 5, 0, 0)]
    assert sorted(licence.section("tenures").frame["user"]) == sorted(SEATED)
    denials = licence.section("denials")
    assert [tuple(r) for r in denials.frame.itertuples(index=False)] == [(day, len(DENIED), len(DENIED))]
    assert denials.totals == {"denials": len(DENIED)}
    # a period without the seating has no denials; seats are those held now, whatever the period
    later = run(seeded, "licence-usage", **{"from": "2026-11-28", "to": "2026-11-30"})
    assert later.section("denials").frame.empty and len(later.section("seats").frame) == len(SEATED)


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


# --- over HTTP: /api/v1/reports, its formats, and the fixed /usage and /jobs -----------------

@pytest.fixture(scope="module")
def http(seeded):
    import falcon.testing
    from api.app import create_app

    seeded.clock = lambda: NOW
    _, admin = seeded.issue_token(name="reports-admin", role="admin")
    _, ann = seeded.issue_token(name="ann's script", role="user", subject="ann")
    seeded.catch_up()
    client = falcon.testing.TestClient(create_app(seeded))
    return client, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {ann}"}


PERIOD = {"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"}


def test_the_catalogue_lists_every_report_with_its_parameters(http):
    client, admin, ann = http
    r = client.simulate_get("/api/v1/reports", headers=admin)
    assert r.status_code == 200
    assert {e["name"] for e in r.json["reports"]} == set(CATALOGUE)
    assert "group_by" in next(e for e in r.json["reports"] if e["name"] == "usage")["parameters"]
    mine = client.simulate_get("/api/v1/reports", headers=ann).json["reports"]
    assert "user-list" not in {e["name"] for e in mine} and "usage" in {e["name"] for e in mine}


def test_a_report_as_json_has_grand_totals_money_as_decimals_and_defined_words(http):
    client, admin, _ = http
    r = client.simulate_get("/api/v1/reports/usage", params={**PERIOD, "group_by": "printer"}, headers=admin)
    assert r.status_code == 200, r.text
    usage = r.json["sections"][0]
    want = expected(JOBS, us("2026-11-27T00:00:00+00:00"), us("2026-12-01T09:00:00+00:00"))["all"]
    assert usage["totals"]["impressions"] == want["impressions"]
    assert usage["totals"]["cost"] == f"{want['cost'] // 10_000}.{want['cost'] % 10_000:04d}"
    assert "impressions" in r.json["definitions"]


def test_a_user_sees_only_their_own_jobs_and_not_the_organisation_reports(http):
    client, _, ann = http
    r = client.simulate_get("/api/v1/reports/usage", params={**PERIOD, "user": "bob"}, headers=ann)
    assert r.status_code == 200
    assert {row["user"] for row in r.json["sections"][0]["rows"]} == {"ann"}
    assert client.simulate_get("/api/v1/reports/user-list", headers=ann).status_code == 403


@pytest.mark.parametrize("params,field,status", [
    ({"from": "2026-12-01", "to": "2026-11-01"}, "to", 400),
    ({"timezone": "Nowhere/Land"}, "timezone", 400),
    ({"user": "nobody-here"}, "user", 400),
    ({"format": "docx"}, "format", 400),
    ({"from": "1900-01-01", "to": "2026-01-01"}, "from", 400),
    ({"group_by": "x", "format": "csv"}, "group_by", 400),
])
def test_bad_report_requests_are_4xx_naming_the_field(http, params, field, status):
    client, admin, _ = http
    r = client.simulate_get("/api/v1/reports/usage", params=params, headers=admin)
    assert r.status_code == status, r.text
    assert field in r.json["errors"], r.json


def test_an_unknown_report_is_a_404_naming_it(http):
    client, admin, _ = http
    r = client.simulate_get("/api/v1/reports/no-such", headers=admin)
    assert r.status_code == 404 and "name" in r.json["errors"]


def test_csv_streams_every_job_with_formulas_escaped(http):
    import csv
    import io
    client, admin, _ = http
    r = client.simulate_get("/api/v1/reports/jobs", params={**PERIOD, "format": "csv", "limit": "3"}, headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = lines.index(["job", "submitted_at", "user", "printer", "client_host", "document",
                          "impressions_per_copy", "copies", "impressions", "colour_impressions", "sheets", "duplex",
                          "paper", "pdl", "size", "status", "cost"])
    body = lines[header + 1:]
    in_period = [j for j in JOBS if us("2026-11-27T00:00:00+00:00") <= j.at < us("2026-12-01T09:00:00+00:00")]
    assert len(body) == len(in_period)  # every job, not the JSON's `limit`
    documents = {row[5] for row in body}
    assert "'=HYPERLINK(\"x\").txt" in documents and "=HYPERLINK(\"x\").txt" not in documents
    assert all(row[16] == "" for row in body if row[15] == "denied")  # never a cost on a denied job


def test_xlsx_pdf_and_html_carry_the_report_and_its_charts(http):
    import io
    import openpyxl
    client, admin, _ = http
    x = client.simulate_get("/api/v1/reports/jobs", params={**PERIOD, "format": "xlsx"}, headers=admin)
    assert x.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(x.content), read_only=True)
    cells = [c for row in book["jobs"].iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert "'=HYPERLINK(\"x\").txt" in cells and not any(c.startswith("=") for c in cells)
    u = client.simulate_get("/api/v1/reports/usage", params={**PERIOD, "format": "xlsx", "group_by": "day"},
                            headers=admin)
    assert "charts" in openpyxl.load_workbook(io.BytesIO(u.content)).sheetnames
    pdf = client.simulate_get("/api/v1/reports/savings", params={**PERIOD, "format": "pdf"}, headers=admin)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    from pypdf import PdfReader
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Potential savings" in text
    html = client.simulate_get("/api/v1/reports/usage", params={**PERIOD, "format": "html", "group_by": "day"},
                               headers=admin)
    assert html.status_code == 200 and html.text.count("data:image/png;base64,") == 2
    assert "<script" not in html.text


def test_usage_is_exact_for_a_time_within_a_day_and_takes_dates_alone(http):
    client, admin, _ = http
    r = client.simulate_get("/api/v1/usage", params={"from": "2026-11-28T18:28:00Z", "to": "2026-11-30",
                                                     "group_by": "user"}, headers=admin)
    assert r.status_code == 200, r.text
    want = expected(JOBS, us("2026-11-28T18:28:00+00:00"), us("2026-12-01T00:00:00+00:00"), lambda j: j.user)
    assert {t["user"]: t["impressions"] for t in r.json["totals"]} == {k: v["impressions"] for k, v in want.items()}
    assert r.json["grand_total"]["jobs"] == sum(v["jobs"] for v in want.values())
    assert {d["user"] for d in r.json["denied"]} <= set(DENIED) and "cost" not in r.json["denied"][0]


def test_the_job_list_names_impressions_and_shows_no_cost_for_a_denied_job(http):
    client, admin, _ = http
    r = client.simulate_get("/api/v1/jobs", params={"from": "2026-11-27", "to": "2026-12-01", "limit": "1000"},
                            headers=admin)
    assert r.status_code == 200, r.text
    for job in r.json["jobs"]:
        assert job["impressions"] == job["impressions_per_copy"] * job["copies"]
        assert (job["cost"] is None) == (job["status"] == "denied")


# --- the licence's seats over time and printers in error, on a runtime of their own ----------

def utc(text: str) -> int:
    return to_micros(datetime.fromisoformat(text).replace(tzinfo=timezone.utc))


@pytest.fixture(scope="module", params=STORES)
def history(request, tmp_path_factory):
    """A licence whose seats are taken, given back and denied around the change to summer time
    in Paris (29 March 2026), then activated with more seats; and printers going into error and
    out of it, reported as the release service would."""
    from commands.printer_status import PrinterObservation
    from domain.licence import ACTIVATED_BY_FILE, SUITE
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings
    from tests.report_data import Job, SetClock, batch

    tmp = tmp_path_factory.mktemp(f"history-{request.param}")
    url = new_database_url(request.param, tmp, request)
    rt = build_runtime(Settings.load(environ={}, database_url=url, data_dir=tmp / "var"))
    rt.clock = clock = SetClock(utc("2026-03-20T09:00:00"))
    rt.licensing.install_trial()  # five seats

    def licence(at: str, change) -> None:
        lic = rt.licensing.get()
        change(lic, utc(at))
        rt.app.save(lic)

    for login in ("ann", "bob", "cat"):
        licence("2026-03-26T10:00:00", lambda lic, t, login=login: lic.claim_seat(login, t))
    licence("2026-03-27T23:30:00", lambda lic, t: lic.claim_seat("dan", t))  # 00:30 on the 28th in Paris
    licence("2026-03-28T12:00:00", lambda lic, t: lic.release_seat("bob", t, reason="left the company"))
    licence("2026-03-28T13:00:00", lambda lic, t: lic.claim_seat("eve", t))
    licence("2026-03-28T14:00:00", lambda lic, t: lic.claim_seat("fay", t))
    licence("2026-03-28T15:00:00", lambda lic, t: lic.claim_seat("gus", t))  # the sixth: denied
    licence("2026-03-29T22:30:00", lambda lic, t: lic.activate(  # 00:30 on the 30th in Paris (CEST)
        key="k", company="Acme", method=ACTIVATED_BY_FILE, host="h", mac="m", type=SUITE, seats=10, expires_at=0,
        now=t))
    licence("2026-03-30T08:00:00", lambda lic, t: lic.claim_seat("gus", t))
    licence("2026-03-31T21:30:00", lambda lic, t: lic.release_seat("ann", t, reason="removed"))  # 23:30 in Paris
    licence("2026-04-02T08:00:00", lambda lic, t: lic.claim_seat("hal", t))  # after the period

    # One job on "hall", so that the report's printer filter knows the queue.
    clock.now = utc("2026-03-28T09:00:00")
    rt.track_jobs(batch([Job("hist-1", "cat", "hall", utc("2026-03-28T08:00:00"), 1, 1, 0, False, "pdf", "a.pdf")]))

    def seen(at: str, printer: str, state: str, reasons=(), message="") -> list:
        clock.now = utc(at) + 1_000_000
        return [o.recorded for o in rt.record_printer_states(
            [PrinterObservation(printer, state, tuple(reasons), message, utc(at))])]

    assert seen("2026-03-20T08:00:00", "old", "stopped", ["paused"]) == [True]
    assert seen("2026-03-21T08:00:00", "old", "idle", ["none"]) == [True]
    assert seen("2026-03-27T20:00:00", "lab", "idle", ["media-empty-error"], "Load paper") == [True]
    assert seen("2026-03-28T01:00:00", "lab", "processing", ["none"]) == [True]
    assert seen("2026-03-28T10:00:00", "hall-release", "stopped", ["paused"], "toner low") == [True]
    assert seen("2026-03-28T10:00:30", "hall-release", "stopped", ["paused"], "toner low") == [False]  # no news
    assert seen("2026-03-28T10:30:00", "hall-release", "idle", ["toner-low-warning"]) == [True]
    assert seen("2026-03-28T11:00:00", "hall-release", "idle", ["none"]) == [False]  # no error to end
    assert seen("2026-03-28T23:00:00", "attic", "stopped", ["paused"], "jammed") == [True]  # never cleared
    assert seen("2026-03-28T23:10:00", "cellar", "idle", ["none"]) == [False]  # healthy: nothing recorded
    rt.catch_up()
    yield rt
    rt.close()


# --- the savings report's daily sums (projections.savings_daily) against the rows --------------

SUMS_PERIODS = [
    ("2026-11-27T00:00:00Z", "2026-12-01T09:00:00Z"),  # starts at a midnight: its first whole day from the sums
    ("2026-11-27T23:55:00Z", "2026-11-30T00:05:00Z"),  # starts and ends within the repeat window of a midnight
    ("2026-11-28T00:03:00Z", "2026-11-30T00:00:00Z"),
    ("2026-11-28T18:28:00Z", "2026-11-30T23:00:00Z"),
    ("2026-11-28T23:59:59.999999Z", "2026-12-01T00:00:00.000001Z"),
    ("2026-11-27T00:00:00Z", "2026-11-29T00:00:00Z"),  # whole days only
    ("2026-10-14T00:00:00Z", "2026-10-18T00:00:00Z"),  # the held jobs, one printed the day after it was sent
    ("2026-11-28T05:55:00Z", "2026-11-30T12:05:00Z"),  # within the repeat window of the sums' six-hour edges
    ("2026-11-28T06:00:00Z", "2026-11-29T18:00:00Z"),  # whole six-hour spans only
    ("2026-11-28T12:00:00Z", "2026-11-28T18:00:00Z"),  # one span
]


def sums_and_rows(rt, params, minutes=10):
    """The savings figures and the repeats by printer, from the daily sums and from the rows only."""
    from projections.reports import _repeat_sums, _repeats_from_sums, _saving_sums, resolve_scope

    p = parse_parameters({k: str(v) for k, v in params.items()}, site_timezone="UTC", now=NOW,
                         allowed=CATALOGUE["savings"].parameters)
    with rt.reader.connect() as conn:
        scope = resolve_scope(conn, p)
        return (_repeats_from_sums(p, scope, minutes),
                (_saving_sums(conn, p, scope), _repeat_sums(conn, p, scope, minutes)),
                (_saving_sums(conn, p, scope, use_sums=False), _repeat_sums(conn, p, scope, minutes, use_sums=False)))


@pytest.mark.parametrize("since,until", SUMS_PERIODS)
@pytest.mark.parametrize("who", [{}, {"user": "ann"}, {"department": "Lab"}, {"printer": "lab-colour"}])
def test_savings_from_the_daily_sums_equal_the_rows_at_every_day_boundary(seeded, since, until, who):
    used_sums, from_sums, from_rows = sums_and_rows(seeded, {"from": since, "to": until, **who})
    # Some users' reports read their rows; a printer filter hides a print's previous one elsewhere.
    assert used_sums is (not who)
    assert from_sums == from_rows
    if not who:
        assert from_rows[0]  # there are jobs to save on


def test_savings_with_another_repeat_window_read_the_rows_and_say_so(seeded):
    period = {"from": "2026-11-27T00:00:00Z", "to": "2026-12-01T09:00:00Z"}
    used_sums, from_sums, from_rows = sums_and_rows(seeded, period, minutes=30)
    assert not used_sums and from_sums == from_rows
    p = parse_parameters(period, site_timezone="UTC", now=NOW, allowed=CATALOGUE["savings"].parameters)
    report = run_report(seeded.reader, "savings", p, sources(seeded, report_repeat_minutes=30))
    again = repeats(JOBS, p.since, p.until, minutes=30)
    assert tuple(report.section("savings").frame.set_index("measure").loc[
        "No repeats within 30 min", ["jobs_affected", "sheets_saved", "cost_saved"]]) == (
        len(again), sum(j.sheets for j in again), sum(j.cost for j in again))
    assert any("default window of 10 minutes" in n for n in report.notes)


# Prints of one document recorded out of time order (late agents), across midnights, and two
# documents that become one when the privacy setting masks their names: (key, user, at, document)
# in the order they are recorded.
LATE = [
    ("a", "ann", "2026-11-28T23:57:00", "plan.pdf"),
    ("b", "ann", "2026-11-29T00:04:00", "plan.pdf"),  # a repeat of a, across midnight
    ("c", "ann", "2026-11-29T10:20:00", "plan.pdf"),
    ("d", "ann", "2026-11-29T10:00:00", "plan.pdf"),  # late: before c, 20 minutes
    ("e", "ann", "2026-11-29T10:12:00", "plan.pdf"),  # late: makes c a repeat
    ("f", "ann", "2026-11-29T10:05:00", "plan.pdf"),  # late: a repeat of d, and makes e one
    ("g", "ann", "2026-11-29T10:20:00", "plan.pdf"),  # the same instant as c, recorded after it
    ("h", "bob", "2026-11-29T10:01:00", "plan.pdf"),  # another user's
    ("i", "ann", "2026-11-29T10:03:00", "budget.pdf"),  # another document, until names are masked
    ("k", "ann", "2026-11-30T23:58:00", "plan.pdf"),
    ("l", "ann", "2026-12-01T00:03:00", "plan.pdf"),  # a repeat of k, across the month's end
    ("m", "ann", "2026-11-28T23:50:00", "plan.pdf"),  # very late: makes a a repeat
]
LATE_PERIODS = [
    {"from": "2026-11-29T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
    {"from": "2026-11-28T23:59:00Z", "to": "2026-12-01T00:02:00Z"},
    {"from": "2026-11-28T23:00:00Z", "to": "2026-12-01T00:05:00Z"},
    {"from": "2026-11-28T00:00:00Z", "to": "2026-12-02T00:00:00Z"},
    {"from": "2026-11-28T23:55:00Z", "to": "2026-11-30T23:59:00Z"},
    {"from": "2026-11-29T10:10:00Z", "to": "2026-11-30T12:00:00Z"},
    {"from": "2026-11-29T06:00:00Z", "to": "2026-11-29T12:00:00Z"},  # the span of the late prints
    {"from": "2026-11-29T10:04:00Z", "to": "2026-11-30T18:00:00Z"},
]


@pytest.fixture(params=STORES)
def fresh(request, tmp_path):
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings

    url = new_database_url(request.param, tmp_path, request)
    rt = build_runtime(Settings.load(environ={}, database_url=url, data_dir=tmp_path / "var"))
    yield rt
    rt.close()


def test_licence_usage_shows_the_seats_of_every_local_day_and_who_held_them(history):
    licence = run(history, "licence-usage", now=utc("2026-04-03T00:00:00"),
                  **{"from": "2026-03-27", "to": "2026-03-31", "timezone": "Europe/Paris"})
    # Worked out by hand from the fixture's story: Paris days, 29 March is 23 hours long.
    assert [tuple(r) for r in licence.section("seats_over_time").frame.itertuples(index=False)] == [
        # day, most held at once, held at the end of the day, allowed then, taken, given back
        ("2026-03-27", 3, 3, 5, 0, 0),
        ("2026-03-28", 5, 5, 5, 3, 1),  # dan (00:30), bob gives his back, eve, fay; gus refused
        ("2026-03-29", 5, 5, 5, 0, 0),
        ("2026-03-30", 6, 6, 10, 1, 0),  # the ten-seat licence from 00:30, then gus
        ("2026-03-31", 6, 5, 10, 0, 1),  # ann's account removed at 23:30
    ]
    assert licence.section("seats_over_time").totals == {"taken": 4, "released": 2}
    tenures = [tuple(r) for r in licence.section("tenures").frame.astype(object).where(
        licence.section("tenures").frame.notna(), None).itertuples(index=False)]
    assert tenures == [
        ("ann", utc("2026-03-26T10:00:00"), utc("2026-03-31T21:30:00"), "removed"),
        ("bob", utc("2026-03-26T10:00:00"), utc("2026-03-28T12:00:00"), "left the company"),
        ("cat", utc("2026-03-26T10:00:00"), None, ""),
        ("dan", utc("2026-03-27T23:30:00"), None, ""),
        ("eve", utc("2026-03-28T13:00:00"), None, ""),
        ("fay", utc("2026-03-28T14:00:00"), None, ""),
        ("gus", utc("2026-03-30T08:00:00"), None, ""),
    ]
    assert [tuple(r) for r in licence.section("denials").frame.itertuples(index=False)] == [("2026-03-28", 1, 1)]
    # Now: hal too, ann gone; seven of ten.
    assert sorted(licence.section("seats").frame["user"]) == ["cat", "dan", "eve", "fay", "gus", "hal"]
    # The same period in UTC: dan's seat and the new licence fall a day earlier.
    in_utc = run(history, "licence-usage", now=utc("2026-04-03T00:00:00"),
                 **{"from": "2026-03-27", "to": "2026-03-31", "timezone": "UTC"})
    assert [tuple(r)[:6] for r in in_utc.section("seats_over_time").frame.itertuples(index=False)] == [
        ("2026-03-27", 4, 4, 5, 1, 0), ("2026-03-28", 5, 5, 5, 2, 1), ("2026-03-29", 5, 5, 10, 0, 0),
        ("2026-03-30", 6, 6, 10, 1, 0), ("2026-03-31", 6, 5, 10, 0, 1)]


def test_workflow_issues_list_the_printers_in_error_during_the_period(history):
    workflow = run(history, "workflow-issues", now=utc("2026-04-03T00:00:00"),
                   **{"from": "2026-03-28T00:00:00Z", "to": "2026-03-29T00:00:00Z"})
    section = workflow.section("printer_errors")
    frame = section.frame.astype(object).where(section.frame.notna(), None)
    assert [tuple(r) for r in frame.itertuples(index=False)] == [
        # printer, started, ended, reasons, message, minutes (all of it), minutes in the period
        ("lab", utc("2026-03-27T20:00:00"), utc("2026-03-28T01:00:00"), "media-empty-error", "Load paper", 300.0, 60.0),
        ("hall-release", utc("2026-03-28T10:00:00"), utc("2026-03-28T10:30:00"), "paused", "toner low", 30.0, 30.0),
        ("attic", utc("2026-03-28T23:00:00"), None, "paused", "jammed", 60.0, 60.0),  # still in error
    ]
    assert section.totals == {"minutes_in_period": 150.0}
    # The secure queue "hall" prints through its release queue "hall-release".
    hall = run(history, "workflow-issues", now=utc("2026-04-03T00:00:00"),
               **{"from": "2026-03-28T00:00:00Z", "to": "2026-03-29T00:00:00Z", "printer": "hall"})
    assert list(hall.section("printer_errors").frame["printer"]) == ["hall-release"]
    # A period after the errors ended lists only the one still open.
    later = run(history, "workflow-issues", now=utc("2026-04-03T00:00:00"),
                **{"from": "2026-04-01", "to": "2026-04-01"})
    assert list(later.section("printer_errors").frame["printer"]) == ["attic"]


@pytest.mark.parametrize("name,params", [
    ("licence-usage", {"from": "2026-03-27", "to": "2026-03-31", "timezone": "Europe/Paris"}),
    ("workflow-issues", {"from": "2026-03-28T00:00:00Z", "to": "2026-03-29T00:00:00Z"}),
])
def test_seats_and_printer_errors_render_in_every_format(history, name, params):
    """Empty cells (a seat still held, a printer still in error) in CSV, XLSX, PDF and HTML."""
    import io

    import openpyxl
    from projections.report_formats import render

    report = run(history, name, now=utc("2026-04-03T00:00:00"), **params)
    csv_text = b"".join(render(report, "csv")).decode()
    book = openpyxl.load_workbook(io.BytesIO(b"".join(render(report, "xlsx"))), read_only=True)
    html = b"".join(render(report, "html")).decode()
    assert b"".join(render(report, "pdf")).startswith(b"%PDF")
    if name == "licence-usage":
        assert "gus,2026-03-30T08:00:00" in csv_text and "seats_over_time" in " ".join(book.sheetnames)
        assert "2026-03-31" in html and "data:image/png;base64," in html  # the seats chart
    else:
        assert "attic,2026-03-28T23:00:00" in csv_text and "printer_errors" in " ".join(book.sheetnames)
        assert "Load paper" in html and "jammed" in html and "Printers in error" in html


@pytest.mark.parametrize("params", [
    {"from": "2026-11-20", "to": "2026-12-01T09:00:00Z"},
    {"from": "2026-11-27T08:00:00Z", "to": "2026-12-01T09:00:00Z", "user": "bob"},
    {"from": "2016-12-01", "to": "2026-12-01T09:00:00Z"},  # mostly empty: many windows before the first job
])
def test_the_job_list_is_the_first_jobs_of_the_period_read_window_by_window(seeded, params):
    """The JSON job list reads its period in windows of time (projections.reports.first_jobs):
    for any limit it is exactly the head of every job of the period, oldest first."""
    import pandas as pd

    from projections.reports import iter_jobs

    p = parse_parameters({**params, "limit": "1"}, site_timezone="UTC", now=NOW, allowed=CATALOGUE["jobs"].parameters)
    every = pd.concat(list(iter_jobs(seeded.reader, p, "keep")), ignore_index=True)
    assert len(every) > 20
    for limit in (1, 7, 20, len(every) - 1, len(every), len(every) + 5):
        got = run(seeded, "jobs", **params, limit=limit).section("jobs").frame
        want = every.head(limit)
        assert got["job"].tolist() == want["job"].tolist(), limit
        assert got["submitted_at"].tolist() == want["submitted_at"].tolist() == sorted(want["submitted_at"])


@pytest.mark.parametrize("few_users", [64, 0], ids=["batch-users-rows", "all-rows-of-the-window"])
def test_repeats_recorded_out_of_time_order_are_counted_as_the_rows_count_them(fresh, monkeypatch, few_users):
    from commands.jobs import TrackJobs
    from domain.costs import CostSchedule
    from projections import reports
    from tests.report_data import SCHEDULES, Job, batch

    monkeypatch.setattr("projections.savings_daily.FEW_USERS", few_users)  # both ways of reading the rows
    rt = fresh
    for printer, (mono, colour, discount) in SCHEDULES.items():
        rt.set_cost_schedule(printer, CostSchedule(mono_page=mono, colour_page=colour, duplex_discount_pct=discount))
    track = TrackJobs(rt.app, rt.printers, document_policy=rt.document_policy, personal=rt.personal_keys)
    late = [Job(f"late-{key}", user, "hall-mono", us(at + "+00:00"), 1 + n % 3, 1 + n % 2, 0, False, "pdf", document)
            for n, (key, user, at, document) in enumerate(LATE)]
    for n, j in enumerate(late):
        assert [o.status for o in track(batch([j]))] == ["tracked"]
        if n % 3 == 2:  # some arrive together, some apart: the projection sees both
            rt.catch_up()
    rt.catch_up()

    def check(jobs):
        for period in LATE_PERIODS:
            used_sums, from_sums, from_rows = sums_and_rows(rt, period)
            assert from_sums == from_rows, period
            p = parse_parameters(period, site_timezone="UTC", now=NOW, allowed=CATALOGUE["savings"].parameters)
            again = repeats(jobs, p.since, p.until)
            saved = run(rt, "savings", **period).section("savings").frame.set_index("measure")
            assert tuple(saved.loc["No repeats within 10 min", ["jobs_affected", "sheets_saved", "cost_saved"]]) == (
                len(again), sum(j.sheets for j in again), sum(j.cost for j in again)), period
            listed = run(rt, "workflow-issues", **period).section("repeated").frame
            assert sorted(listed["submitted_at"]) == sorted(j.at for j in again), period

    check(late)
    assert sums_and_rows(rt, LATE_PERIODS[0])[0]  # whole days came from the sums
    # More repeats than a list shows: the first ones by time, found in a shorter window.
    listed_at_most = reports.MAX_ROWS_LISTED
    monkeypatch.setattr("projections.reports.MAX_ROWS_LISTED", 2)
    for period in LATE_PERIODS:
        p = parse_parameters(period, site_timezone="UTC", now=NOW, allowed=CATALOGUE["savings"].parameters)
        again = repeats(late, p.since, p.until)
        listed = run(rt, "workflow-issues", **period).section("repeated")
        assert list(listed.frame["submitted_at"]) == sorted(j.at for j in again)[:2], period
        assert listed.totals == {"sheets": sum(j.sheets for j in again), "cost": sum(j.cost for j in again)}
    monkeypatch.setattr("projections.reports.MAX_ROWS_LISTED", listed_at_most)
    assert len(repeats(late, us("2026-11-28T00:00:00+00:00"), us("2026-12-02T00:00:00+00:00"))) == 7
    # Masked names: plan.pdf and budget.pdf are both "*.pdf" now, in the rows and in the sums.
    rt.change_setting("document_names", "mask", by="alice")
    rt.site_settings.invalidate()
    rt.catch_up()
    check([replace(j, document=shown_document(j.document, "mask")) for j in late])
    verified = rt.audit.verify()
    assert verified.ok, [c.shown for c in verified.read_models.checks]


@pytest.mark.parametrize("pass_rows", [None, 7], ids=["one-pass", "passes-of-7-rows"])
def test_jobs_of_one_batch_spread_over_months_are_recounted_later_and_the_report_is_exact_meanwhile(
        fresh, monkeypatch, pass_rows):
    """A batch spread wider than a span (a migration replaying legacy rows in their own order) is
    not summed at ingest, whatever its size: its spans are marked and recounted at the end of the
    catch-up. Before that the report reads the marked spans' rows; after it, the sums; both
    equal the rows, and a rebuild ends with the same sums. With passes of a few rows (read 5 at
    a time), repeats fall across the passes' edges: the sums still equal the rows."""
    import random

    import sqlalchemy as sa

    from commands.jobs import TrackJobs
    from domain.costs import CostSchedule
    from projections import savings_daily as sd
    from projections.savings_daily import savings_daily, savings_dirty
    from tests.report_data import SCHEDULES, Job, batch

    if pass_rows:
        monkeypatch.setattr(sd, "RECOUNT_PASS_ROWS", pass_rows)
        monkeypatch.setattr(sd, "RECOUNT_ROWS", 5)

    rt = fresh
    for printer, (mono, colour, discount) in SCHEDULES.items():
        rt.set_cost_schedule(printer, CostSchedule(mono_page=mono, colour_page=colour, duplex_discount_pct=discount))
    rng = random.Random(16)
    start = us("2026-09-01T00:00:00+00:00")
    jobs, n = [], 0
    while len(jobs) < 300:  # bursts of one user's document a few minutes apart: repeats across span edges
        at = start + rng.randrange(90 * 86_400) * 1_000_000
        user, document = rng.choice(("ann", "bob", "cy")), rng.choice(("plan.pdf", "notes.txt", "budget.xls"))
        printer = rng.choice(tuple(SCHEDULES))
        for _ in range(rng.randrange(1, 4)):
            pages = rng.randrange(1, 9)
            jobs.append(Job(f"spread-{n}", user, printer, at, pages, rng.randrange(1, 3),
                            rng.randrange(0, min(pages, 2) + 1), rng.random() < 0.3, "pdf", document))
            at += rng.randrange(1, 15 * 60) * 1_000_000
            n += 1
    rng.shuffle(jobs)
    track = TrackJobs(rt.app, rt.printers, document_policy=rt.document_policy, personal=rt.personal_keys)
    assert {o.status for o in track(batch(jobs))} == {"tracked"}
    follower = rt.all_together()
    while follower.run_once():  # applied, not yet settled
        pass
    periods = [{"from": "2026-09-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
               {"from": "2026-09-14T05:55:00Z", "to": "2026-11-02T18:04:00Z"},
               {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
               {"from": "2026-10-03T06:03:00Z", "to": "2026-10-03T23:59:00Z"}]

    def check():
        for period in periods:
            used_sums, from_sums, from_rows = sums_and_rows(rt, period)
            assert used_sums and from_sums == from_rows, period
            p = parse_parameters(period, site_timezone="UTC", now=NOW, allowed=CATALOGUE["savings"].parameters)
            again = repeats(jobs, p.since, p.until)
            saved = run(rt, "savings", **period).section("savings").frame.set_index("measure")
            assert tuple(saved.loc["No repeats within 10 min", ["jobs_affected", "sheets_saved", "cost_saved"]]) == (
                len(again), sum(j.sheets for j in again), sum(j.cost for j in again)), period
        assert len(repeats(jobs, us("2026-09-01T00:00:00+00:00"), us("2026-12-01T00:00:00+00:00"))) > 50

    with rt.reader.connect() as conn:
        marked = conn.execute(sa.select(sa.func.count()).select_from(savings_dirty)).scalar()
        assert marked > 100 and not conn.execute(sa.select(sa.func.count()).select_from(savings_daily)).scalar()
    check()  # every span read from the rows
    verified = rt.audit.verify()  # the rebuild ends recounted; the spans still marked live are not compared
    assert verified.ok, [c.shown for c in verified.read_models.checks]
    rt.catch_up()  # the end of a catch-up recounts the marked spans
    with rt.reader.connect() as conn:
        assert not conn.execute(sa.select(sa.func.count()).select_from(savings_dirty)).scalar()
        assert conn.execute(sa.select(sa.func.count()).select_from(savings_daily)).scalar() > 100
    check()  # from the sums
    verified = rt.audit.verify()
    assert verified.ok, [c.shown for c in verified.read_models.checks]


def test_a_running_server_recounts_the_spans_of_a_spread_batch_once_it_has_caught_up(fresh):
    """The in-process runner recounts marked spans when it has nothing left to apply, so the
    sums come back without a catch-up from the command line."""
    import time

    import sqlalchemy as sa

    from commands.jobs import TrackJobs
    from projections.savings_daily import savings_daily, savings_dirty
    from tests.report_data import Job, batch

    rt = fresh
    track = TrackJobs(rt.app, rt.printers, document_policy=rt.document_policy, personal=rt.personal_keys)
    start = us("2026-09-01T00:00:00+00:00")
    jobs = [Job(f"late-{n}", "ann", "hall-mono", start + n * 7 * 86_400_000_000 + (n % 2) * 60_000_000, 2, 1, 0,
                False, "pdf", "plan.pdf") for n in range(6)]
    rt.start_projections()
    track(batch(jobs[::-1]))  # one batch over five weeks, newest first
    deadline = time.monotonic() + 30
    while True:
        with rt.reader.connect() as conn:
            dirty = conn.execute(sa.select(sa.func.count()).select_from(savings_dirty)).scalar()
            spans = conn.execute(sa.select(sa.func.count()).select_from(savings_daily)).scalar()
        if not dirty and spans == len(jobs):
            break
        assert time.monotonic() < deadline, (dirty, spans)
        time.sleep(0.1)
    used_sums, from_sums, from_rows = sums_and_rows(rt, {"from": "2026-09-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"})
    assert used_sums and from_sums == from_rows and from_rows[0]
