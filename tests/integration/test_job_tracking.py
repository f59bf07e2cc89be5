"""Job tracking through commands and projections, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta, timezone
from uuid import UUID

import falcon.testing
import msgspec

import pytest
import sqlalchemy as sa

from api.app import create_app
from commands.job_reports import parse_batch
from commands.jobs import TrackJobs
from commands.validation import InvalidRequest
from domain.costs import CostSchedule
from domain.units import to_micros
from projections.follower import Follower
from projections.jobs import JobsProjection
from projections.jobs import JobFilter, list_jobs
from projections.usage_daily import usage_totals
from projections.jobs import jobs
from projections.usage_daily import usage_daily
from tools.sample_jobs import sample_jobs


def reports(n, **kw):
    return parse_batch(json.dumps({"jobs": list(sample_jobs(n, **kw))}).encode())


def events_after(runtime, position):
    return len(runtime.app.recorder.select_notifications(start=position, limit=100_000, inclusive_of_start=False))


def table_rows(engine, table):
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(table)))


def test_a_tracked_job_is_one_event_priced_by_its_printers_schedule(runtime):
    runtime.set_cost_schedule("office", CostSchedule(mono_page=500, colour_page=2500, duplex_discount_pct=10))
    head_before = runtime.followers["jobs"].head()
    report = reports(1)[0]
    report = msgspec.structs.replace(report, printer="office", pages=4, colour_pages=1, copies=2, duplex=True)
    [outcome] = TrackJobs(runtime.app, runtime.printers)([report])
    assert outcome.status == "tracked"
    assert outcome.sheets == 4
    assert outcome.cost == (3 * 500 + 2500) * 2 * 90 // 100
    assert events_after(runtime, head_before) == 1  # exactly one event for the job
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        [row], _ = list_jobs(conn, JobFilter())
    assert (row.printer, row.pages, row.copies, row.sheets, row.cost) == ("office", 4, 2, 4, 7200)


def test_reposting_a_batch_records_nothing_new(runtime):
    batch = reports(20)
    first = TrackJobs(runtime.app, runtime.printers)(batch)
    head = runtime.followers["jobs"].head()
    again = TrackJobs(runtime.app, runtime.printers)(batch + reports(5, seed=9))
    assert [o.status for o in first] == ["tracked"] * 20
    assert [o.status for o in again] == ["duplicate"] * 20 + ["tracked"] * 5
    assert [o.cost for o in again[:20]] == [o.cost for o in first]
    new_printers = {r.printer for r in reports(5, seed=9)} - {r.printer for r in batch}
    assert events_after(runtime, head) == 5 + len(new_printers)
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 25


def test_the_same_key_twice_in_one_batch_is_one_job(runtime):
    [r] = reports(1)
    outcomes = TrackJobs(runtime.app, runtime.printers)([r, r])
    assert [o.status for o in outcomes] == ["tracked", "duplicate"]


def test_concurrent_reposts_of_one_batch_record_each_job_once(runtime):
    batch = reports(200)
    results, errors = [], []

    def post():
        try:
            results.append(TrackJobs(runtime.app, runtime.printers)(batch))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    tracked = sum(o.status == "tracked" for result in results for o in result)
    assert tracked == 200
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 200


def test_usage_daily_totals_match_the_jobs(runtime):
    TrackJobs(runtime.app, runtime.printers)(reports(300))
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        by_user = usage_totals(conn, "user")
        job_rows = conn.execute(sa.select(jobs)).mappings().all()
    assert sum(t.jobs for t in by_user) == 300
    assert sum(t.sheets for t in by_user) == sum(r["sheets"] for r in job_rows)
    assert sum(t.pages for t in by_user) == sum(r["pages"] * r["copies"] for r in job_rows)
    total_cost = sum(r["cost"] for r in job_rows)
    assert sum(t.cost for t in by_user) == total_cost


def test_rebuild_gives_identical_tables(runtime):
    TrackJobs(runtime.app, runtime.printers)(reports(700))
    TrackJobs(runtime.app, runtime.printers)(reports(300, seed=3))
    runtime.catch_up()
    before = {t.name: table_rows(runtime.writer, t) for t in (jobs, usage_daily)}
    assert len(before["jobs"]) == 1000
    for name in ("jobs", "usage_daily"):
        assert runtime.followers[name].rebuild() > 0
    after = {t.name: table_rows(runtime.writer, t) for t in (jobs, usage_daily)}
    assert after == before


def test_two_runners_never_apply_an_event_twice(runtime):
    TrackJobs(runtime.app, runtime.printers)(reports(2000))
    # Two independent followers of the same projection (as two server nodes would run).
    followers = [Follower(runtime.app, runtime.writer, JobsProjection(), batch_size=100) for _ in range(2)]
    followers[0].ensure_tracking_row()
    errors = []

    def run(f):
        try:
            f.catch_up()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in followers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 2000


def test_keyset_paging_walks_every_job_once_newest_first(runtime):
    TrackJobs(runtime.app, runtime.printers)(reports(250))
    runtime.catch_up()
    seen, cursor = [], None
    with runtime.reader.connect() as conn:
        while True:
            page, cursor = list_jobs(conn, JobFilter(before_seq=cursor, limit=60))
            seen.extend(j.seq for j in page)
            if cursor is None:
                break
    assert len(seen) == 250 and seen == sorted(seen, reverse=True)


def test_a_new_cost_schedule_prices_the_next_batch_in_the_same_process(runtime):
    [r] = reports(1)
    r = msgspec.structs.replace(r, printer="lab", pages=10, colour_pages=0, copies=1, duplex=False)
    assert TrackJobs(runtime.app, runtime.printers)([r])[0].cost == 10 * runtime.default_schedule.mono_page
    runtime.set_cost_schedule("lab", CostSchedule(mono_page=1, colour_page=2))  # no cache call of our own
    r2 = msgspec.structs.replace(r, job_key="another")
    assert TrackJobs(runtime.app, runtime.printers)([r2])[0].cost == 10
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        assert sorted(c for (c,) in conn.execute(sa.select(jobs.c.cost))) == [10, 10 * runtime.default_schedule.mono_page]


@dataclass(frozen=True)
class Refused:
    track: bool = False
    reason: str = "no licence seat"


def test_a_repost_with_other_figures_is_a_conflict_naming_them_and_the_rest_of_its_batch_is_recorded(
        runtime, caplog):
    [original] = reports(1)
    original = msgspec.structs.replace(original, pages=4, copies=1, colour_pages=0, duplex=False)
    [tracked] = TrackJobs(runtime.app, runtime.printers)([original])
    head = runtime.followers["jobs"].head()
    altered = msgspec.structs.replace(original, pages=5, copies=2, document="Secret plans.pdf",
                                      submitted_at=original.submitted_at + timedelta(minutes=5))
    [new_job] = reports(1, seed=9)
    with caplog.at_level(logging.WARNING, logger="pageledger.jobs"):
        conflict, tracked_too = TrackJobs(runtime.app, runtime.printers)([altered, new_job])
    assert (conflict.status, conflict.decision) == ("conflict", tracked.decision)
    assert conflict.fields == ("submitted_at", "pages", "copies", "document")
    assert "submitted_at, pages, copies, document" in conflict.message
    # answered with the job as recorded, not with the re-post's figures
    assert (conflict.job_id, conflict.sheets, conflict.cost) == (tracked.job_id, tracked.sheets, tracked.cost)
    assert tracked_too.status == "tracked"  # one bad re-post does not block its batch
    new_printer = new_job.printer.lower() != original.printer.lower()
    assert events_after(runtime, head) == 1 + new_printer  # nothing for the conflict
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        rows, _ = list_jobs(conn, JobFilter(user=original.user))
    assert [(row.pages, row.copies, row.document) for row in rows] == [(4, 1, original.document)]

    [line] = [r for r in caplog.records if r.name == "pageledger.jobs" and r.levelno == logging.WARNING]
    message = line.getMessage()
    assert original.job_key in message and "conflict" in message
    assert "pages recorded 4, posted 5" in message and "copies recorded 1, posted 2" in message
    assert (f"submitted_at recorded {original.submitted_at.isoformat()}, "
            f"posted {altered.submitted_at.isoformat()}") in message
    assert str(to_micros(original.submitted_at)) not in message  # never the stored µs
    assert "document (personal, not shown)" in message
    assert "Secret plans" not in message and original.document not in message and original.user not in message
    assert (line.job_key, line.fields) == (original.job_key, ["submitted_at", "pages", "copies", "document"])


def test_the_same_figures_in_other_spellings_are_a_duplicate_not_a_conflict(runtime):
    [original] = reports(1)
    [tracked] = TrackJobs(runtime.app, runtime.printers)([original])
    same = msgspec.structs.replace(original, printer=original.printer.upper(),
                                   submitted_at=original.submitted_at.astimezone(timezone(timedelta(hours=2))))
    [again] = TrackJobs(runtime.app, runtime.printers)([same])
    assert (again.status, again.fields, again.cost) == ("duplicate", (), tracked.cost)


def test_the_same_key_twice_in_one_batch_answers_the_first_ones_figures_and_decision(runtime):
    [r] = reports(1)
    r = msgspec.structs.replace(r, pages=3, copies=2, duplex=False)
    first, again = TrackJobs(runtime.app, runtime.printers)([r, r])
    assert (again.status, again.decision, again.sheets, again.cost) == ("duplicate", "print", 6, first.cost)
    assert first.cost > 0
    [later] = TrackJobs(runtime.app, runtime.printers)([r])
    assert (later.sheets, later.cost) == (again.sheets, again.cost)  # one answer, in a batch or across

    [denied_job] = reports(1, seed=4)
    refused = TrackJobs(runtime.app, runtime.printers, gate=lambda users: {u: Refused() for u in users})
    denied, repeated = refused([denied_job, denied_job])
    assert (denied.status, denied.decision) == ("denied", "deny")
    assert (repeated.status, repeated.decision, repeated.sheets, repeated.cost) == \
        ("duplicate", "deny", denied.sheets, denied.cost)


def test_the_same_key_twice_in_one_batch_with_other_figures_is_a_conflict(runtime, caplog):
    [r] = reports(1)
    head = runtime.followers["jobs"].head()
    other = msgspec.structs.replace(r, pages=r.pages + 1, user="mallory")
    with caplog.at_level(logging.WARNING, logger="pageledger.jobs"):
        first, conflict = TrackJobs(runtime.app, runtime.printers)([r, other])
    assert (first.status, conflict.status, conflict.fields) == ("tracked", "conflict", ("user", "pages"))
    assert (conflict.sheets, conflict.cost, conflict.decision) == (first.sheets, first.cost, first.decision)
    assert events_after(runtime, head) == 2  # the job and its new printer: once
    [line] = [rec.getMessage() for rec in caplog.records if rec.name == "pageledger.jobs"]
    assert "same batch" in line and "user (personal, not shown)" in line and "mallory" not in line


def test_a_conflict_is_answered_in_json_with_its_fields(runtime):
    _, secret = runtime.issue_token(name="printsrv1", role="agent")
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    job = next(sample_jobs(1))

    def post(*jobs_):
        r = client.simulate_post("/Services/jobs", json={"jobs": list(jobs_)},
                                 headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200, r.text
        return r.json["results"]

    [first] = post(job)
    assert first["fields"] == []
    [again, conflict] = post(job, dict(job, duplex=not job["duplex"]))
    assert (again["status"], again["fields"]) == ("duplicate", [])
    assert (conflict["status"], conflict["fields"], conflict["decision"]) == ("conflict", ["duplex"], first["decision"])
    assert "duplex" in conflict["message"] and conflict["cost"] == first["cost"]


def test_a_conflict_naming_another_printer_keeps_the_decision_of_the_printer_it_was_recorded_on(runtime):
    runtime.set_secure_hold("secure", True)
    [r] = reports(1)
    r = msgspec.structs.replace(r, printer="secure")
    [held] = TrackJobs(runtime.app, runtime.printers)([r])
    head = runtime.followers["jobs"].head()
    [again] = TrackJobs(runtime.app, runtime.printers)([msgspec.structs.replace(r, printer="open-plan")])
    assert (held.decision, again.status, again.decision, again.fields) == ("hold", "conflict", "hold", ("printer",))
    assert events_after(runtime, head) == 0  # not even the printer only the conflict names


def test_the_printing_application_is_recorded_on_tracked_denied_and_held_jobs_and_kept_compact(runtime):
    """An agent's `application` goes into the job's one event (Tracked, Denied or Secured); the
    jobs rows hold a small id of it (0 when not known), the name once in application_keys; a
    re-post naming another application is a conflict; a bad one is a 400 naming the field."""
    from projections.names import application_keys

    _, secret = runtime.issue_token(name="printsrv1", role="agent")
    runtime.set_secure_hold("vault", True)
    runtime.licensing.install_trial()  # five seats
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    jobs_ = [dict(job, user="user0") for job in sample_jobs(4, seed=5)]
    jobs_[0]["application"] = "LibreOffice"
    jobs_[1]["application"] = "LibreOffice"
    jobs_[2].pop("application", None)  # an older agent: not known
    jobs_[3].update(application="Mozilla Firefox", printer="vault")

    def post(*batch):
        return client.simulate_post("/Services/jobs", json={"jobs": list(batch)},
                                    headers={"Authorization": f"Bearer {secret}"})

    r = post(*jobs_)
    assert r.status_code == 200, r.text
    assert [x["decision"] for x in r.json["results"]] == ["print", "print", "print", "hold"]
    for result, job in zip(r.json["results"], jobs_):
        assert runtime.app.repository.get(UUID(result["job_id"])).application == job.get("application", "")
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        names = dict(conn.execute(sa.select(application_keys.c.id, application_keys.c.name)).all())
        ids = conn.execute(sa.select(jobs.c.app_id).order_by(jobs.c.seq)).scalars().all()
    assert sorted(names.values()) == ["LibreOffice", "Mozilla Firefox"]
    assert [names.get(i, "") for i in ids] == ["LibreOffice", "LibreOffice", "", "Mozilla Firefox"]
    assert ids[2] == 0

    [again] = post(dict(jobs_[0], application="Writer")).json["results"]
    assert (again["status"], again["fields"]) == ("conflict", ["application"])
    [same] = post(jobs_[0]).json["results"]
    assert same["status"] == "duplicate"
    before = events_after(runtime, 0)
    bad = post(dict(jobs_[0], job_key="new-1", application="Writer\x07"), dict(jobs_[1], job_key="new-2",
                                                                                application="x" * 129))
    assert bad.status_code == 400, bad.text
    assert {"jobs.0.application", "jobs.1.application"} <= set(bad.json["errors"])
    assert events_after(runtime, 0) == before  # nothing written

    # A denied job carries it too (user5 finds no seat left), and a rebuild gives the same rows and ids.
    decisions = [post(dict(jobs_[0], job_key=f"seat-{n}", user=f"user{n}", application="Evince")).json["results"][0]
                 for n in range(6)]
    assert decisions[-1]["decision"] == "deny"
    assert runtime.app.repository.get(UUID(decisions[-1]["job_id"])).application == "Evince"
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        statuses = conn.execute(sa.select(jobs.c.status, application_keys.c.name).join(
            application_keys, application_keys.c.id == jobs.c.app_id).where(application_keys.c.name == "Evince")).all()
    assert {s for s, _ in statuses} == {0, 1}  # tracked and denied, both with their application
    rows = table_rows(runtime.writer, jobs)
    assert runtime.followers["jobs"].rebuild() > 0
    assert table_rows(runtime.writer, jobs) == rows


def test_a_catch_up_and_a_rebuild_summarise_the_brin_index_of_job_times_at_their_end(runtime, monkeypatch):
    """On PostgreSQL `ix_jobs_submitted_at` is BRIN (migration 0014): a catch-up or a rebuild,
    which fill many pages at once, call summarize_new_jobs at their end (Projection.loaded);
    the runner's steady passes leave it to autovacuum. (What the call does to the index:
    tests/integration/test_migrations.py.)"""
    import projections.jobs as jobs_module

    calls = []
    real = jobs_module.summarize_new_jobs

    def counted(conn):
        calls.append(conn.dialect.name)
        real(conn)

    monkeypatch.setattr(jobs_module, "summarize_new_jobs", counted)
    follower = runtime.followers["jobs"]
    TrackJobs(runtime.app, runtime.printers)(reports(30))
    assert follower.run_once() > 0 and calls == []
    TrackJobs(runtime.app, runtime.printers)(reports(30, key_prefix="more"))
    follower.catch_up()
    assert calls == [runtime.writer.dialect.name]
    follower.catch_up()  # nothing new: nothing to summarise
    assert len(calls) == 1
    follower.rebuild()
    assert len(calls) == 2
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar() == 60
