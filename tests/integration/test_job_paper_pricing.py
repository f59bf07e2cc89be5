"""Pricing a job per paper size, and a job whose colour the agent could not tell (issue 19)."""
from __future__ import annotations

import json

import msgspec

from commands.job_reports import parse_batch
from commands.jobs import TrackJobs
from api.reports import job_json
from domain.costs import CostSchedule
from projections.jobs import JobFilter, list_jobs
from tools.sample_jobs import sample_jobs


def report(**figures):
    job = dict(next(sample_jobs(1)), printer="office", copies=1, duplex=False)
    job.update(figures)
    return parse_batch(json.dumps({"jobs": [job]}).encode())[0]


def test_each_paper_size_is_priced_at_its_own_rate_and_the_event_keeps_the_counts(runtime):
    runtime.set_cost_schedule("office", CostSchedule(mono_page=500, colour_page=2500,
                                                     by_paper={"A3": (1000, 5000)}))
    mixed = report(job_key="mixed/1", pages=4, colour_pages=1, paper="mixed", copies=2,
                   paper_counts={"A4": {"pages": 3, "colour_pages": 1}, "A3": {"pages": 1, "colour_pages": 0}})
    [outcome] = TrackJobs(runtime.app, runtime.printers)([mixed])
    assert outcome.status == "tracked"
    assert outcome.cost == (2 * 500 + 2500 + 1000) * 2
    job = runtime.app.repository.get(outcome.job_id)
    assert (job.paper, job.paper_counts, job.pages_known, job.colour_known) == (
        "mixed", {"A3": [1, 0], "A4": [3, 1]}, True, True)
    # A re-post with the same counts is a duplicate; with other counts, a conflict naming them.
    [again] = TrackJobs(runtime.app, runtime.printers)([mixed])
    assert again.status == "duplicate"
    other = msgspec.structs.replace(mixed, paper_counts=parse_batch(json.dumps({"jobs": [dict(
        next(sample_jobs(1)), pages=4, colour_pages=1, paper_counts={"A4": {"pages": 4, "colour_pages": 1}})]})
        .encode())[0].paper_counts)
    [conflict] = TrackJobs(runtime.app, runtime.printers)([other])
    assert (conflict.status, conflict.fields) == ("conflict", ("paper_counts",))


def test_unknown_colour_is_charged_as_colour_by_default_and_as_reported_when_the_site_says_mono(runtime):
    runtime.set_cost_schedule("office", CostSchedule(mono_page=500, colour_page=2500))
    unsure = dict(pages=4, colour_pages=0, paper="A4", colour_known=False, uncertain="encrypted with a password")
    [as_colour] = TrackJobs(runtime.app, runtime.printers)([report(job_key="u/1", **unsure)])
    assert as_colour.cost == 4 * 2500
    [as_mono] = TrackJobs(runtime.app, runtime.printers, unknown_colour_charge="mono")([report(job_key="u/2", **unsure)])
    assert as_mono.cost == 4 * 500
    job = runtime.app.repository.get(as_colour.job_id)
    assert (job.colour_pages, job.colour_known, job.uncertain) == (0, False, "encrypted with a password")
    [known] = TrackJobs(runtime.app, runtime.printers)([report(job_key="u/3", pages=4, colour_pages=1, paper="A4")])
    assert known.cost == 3 * 500 + 2500
    # Reports show what was not known, and why.
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        rows, _ = list_jobs(conn, JobFilter())
    shown = {row.cost: row.uncertain for row in rows}
    assert shown == {4 * 2500: "colour not known: encrypted with a password",
                     4 * 500: "colour not known: encrypted with a password", 3 * 500 + 2500: ""}
    assert [job_json(row).get("uncertain", "") for row in rows] == [row.uncertain for row in rows]


def test_the_unknown_colour_charge_is_an_admin_site_setting_that_prices_jobs_and_reports_show(runtime):
    """Set from the console's field-level save (PATCH /api/v1/settings/{field}): one FieldChanged
    event with who, old and new; new jobs are priced by it; reports say what is in force."""
    import falcon.testing

    from api.app import create_app
    from domain.site_settings import FIELDS, SiteSettings
    from projections.report_period import parse_parameters
    from projections.reports import CATALOGUE, ReportSources, run_report

    assert FIELDS["unknown_colour_charge"].default == "colour"  # the safer choice: never undercharges
    runtime.set_cost_schedule("office", CostSchedule(mono_page=500, colour_page=2500))
    unsure = dict(pages=4, colour_pages=1, paper="A4", colour_known=False, uncertain="raw queue, device not asked")
    track = runtime.track_jobs
    [before] = track([report(job_key="s/1", **unsure)])
    assert before.cost == 4 * 2500

    runtime.add_local_user(login="ann", password="ann-pw-4567", role="admin", profile={})
    _, ann = runtime.issue_token(name="ann", role="admin", subject="ann")
    _, kim = runtime.issue_token(name="kim", role="user", subject="kim")
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    # A user cannot change it; a bad value is refused naming the field; neither writes anything.
    refused = client.simulate_patch("/api/v1/settings/unknown_colour_charge", headers={"Authorization": f"Bearer {kim}"},
                                    json={"value": "mono", "expected": "colour"})
    assert refused.status_code == 403
    bad = client.simulate_patch("/api/v1/settings/unknown_colour_charge", headers={"Authorization": f"Bearer {ann}"},
                                json={"value": "grey", "expected": "colour"})
    assert (bad.status_code, bad.json["errors"]) == (400, {"value": ["must be one of: colour, mono"]}), bad.json
    assert runtime.site_settings["unknown_colour_charge"] == "colour"
    changed = client.simulate_patch("/api/v1/settings/unknown_colour_charge", headers={"Authorization": f"Bearer {ann}"},
                                    json={"value": "mono", "expected": "colour"})
    assert (changed.status_code, changed.json["value"]) == (200, "mono"), changed.json
    settings = runtime.site_settings.load()
    recorded = [e for e in runtime.app.events.get(settings.id) if isinstance(e, SiteSettings.FieldChanged)]
    assert [(e.field, e.old, e.new, e.by) for e in recorded] == [("unknown_colour_charge", "colour", "mono", "ann")]
    page = client.simulate_get("/admin/settings", headers={"Authorization": f"Bearer {ann}"})
    assert page.status_code == 200 and "unknown_colour_charge" in page.text

    [after] = track([report(job_key="s/2", **unsure)])
    assert after.cost == 3 * 500 + 2500  # as the agent reported it: one colour page
    assert before.cost == 4 * 2500  # a job already tracked keeps its price

    runtime.catch_up()
    p = parse_parameters({"from": "2020-01-01", "to": "2029-12-31"}, site_timezone="UTC", now=runtime.clock(),
                         allowed=CATALOGUE["usage"].parameters)
    src = ReportSources(settings=runtime.site_settings.values, schedule_of=runtime.printers.schedule_of)
    for name in ("usage", "workflow-issues"):
        shown = run_report(runtime.reader, name, p, src)
        assert any("unknown_colour_charge = mono" in note for note in shown.notes), shown.notes
