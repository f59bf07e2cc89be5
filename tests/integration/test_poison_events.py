"""Events a projection cannot apply ("poison"), written straight into the event store as a store
may already hold them (before validation at ingest refused them, or through a future bug).

(a) An event no projection can store stops only the projection that reads it: /healthz and
    /metrics name it with the event's position, it is retried with a growing pause and one
    log line per attempt, and `pageledger projections repair --skip` lets it go on.
(b) The poison that stores do hold (NUL in text, pages × copies beyond 32 bits, years 1 and
    9999) is applied and shown after `projections rebuild`, on SQLite and PostgreSQL.
"""
from __future__ import annotations

import logging
import subprocess
import sys
import uuid

import falcon.testing
import sqlalchemy as sa

from api.app import create_app
from domain.jobs import PrintJob
from projections.follower import projection_failures, projection_positions, projection_skips
from projections.jobs import jobs
from projections.usage_daily import usage_daily
from tests.conftest import ROOT

FACTS = dict(user="alice", printer="office", client_host="ws1", submitted_at=1_764_000_000_000_000, pages=2,
             copies=1, sheets=2, colour_pages=0, duplex=False, paper="A4", size=100, pdl="pdf", cost=1000,
             schedule=0, document="report.pdf")


def record(runtime, **facts) -> int:
    """Store one PrintJob.Tracked as it is, bypassing validation; returns its position."""
    runtime.app.record(events=[PrintJob.tracked(uuid.uuid4(), **{**FACTS, **facts})])
    return int(runtime.app.recorder.max_notification_id())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def pageledger(runtime, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env.update(PYTHONPATH=str(ROOT), PAGELEDGER_DATABASE_URL=runtime.settings.resolved_database_url,
               PAGELEDGER_DATA_DIR=str(runtime.settings.data_dir))
    return subprocess.run([sys.executable, "-m", "pageledger.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_an_event_a_projection_cannot_apply_is_named_retried_with_back_off_and_skipped_by_the_operator(
        runtime, caplog):
    _, admin = runtime.issue_token(name="ops", role="admin")
    record(runtime)
    # No column holds a size beyond 64 bits, on either store: only the jobs projection reads it.
    poison = record(runtime, size=2**63, document="payroll-secret.pdf")
    record(runtime)
    follower = runtime.all_together()
    clock = follower.clock = FakeClock()
    with caplog.at_level(logging.INFO, logger="pageledger.projections"):
        follower.catch_up()
        # The others went on: both good jobs are in the usage totals, the jobs table holds the first.
        with runtime.reader.connect() as conn:
            assert conn.execute(sa.select(sa.func.sum(usage_daily.c.jobs))).scalar_one() == 3
            positions = projection_positions(conn)
        assert positions["jobs"] == poison - 1 and positions["usage_daily"] == poison + 1
        assert count(runtime.reader, jobs) == 1

        client = falcon.testing.TestClient(create_app(runtime))
        health = client.simulate_get("/healthz")
        assert health.status_code == 503
        [problem] = [p for p in health.json["problems"] if p.get("projection") == "jobs"]
        assert problem["position"] == poison and problem["error"] and "\n" not in problem["error"]
        assert f"position {poison}" in problem["problem"] and health.json["failed"] == ["jobs"]
        assert "payroll" not in health.text and "alice" not in health.text
        metrics = client.simulate_get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert 'pageledger_projection_failed{projection="jobs"} 1' in metrics.text
        assert 'pageledger_projection_failed{projection="usage_daily"} 0' in metrics.text
        assert f'pageledger_projection_failed_position{{projection="jobs"}} {poison}' in metrics.text
        assert 'pageledger_projection_events_behind{projection="jobs"} 2' in metrics.text

        # Back-off: 1 s, 2 s, 4 s between attempts; nothing in between, one line per attempt.
        for _ in range(20):
            follower.run_once()
        for step in (1.0, 2.0, 4.0):
            clock.now += step - 0.01
            follower.run_once()
            clock.now += 0.01
            follower.run_once()
    failing = [r for r in caplog.records if r.levelno == logging.ERROR and "cannot apply" in r.getMessage()]
    assert [r.attempts for r in failing] == [1, 2, 3, 4]
    assert [r.retry_seconds for r in failing] == [1.0, 2.0, 4.0, 8.0]
    assert all(r.exc_info is None and r.position == poison for r in failing)
    assert all("payroll" not in r.getMessage() for r in caplog.records)
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(projection_failures.c.attempts)).scalar_one() == 4

    listed = pageledger(runtime, "projections", "repair")
    assert listed.returncode == 1, listed.stderr
    assert f"FAILED jobs" in listed.stdout and f"at event {poison}" in listed.stdout
    assert f"--skip jobs --event {poison}" in listed.stdout
    wrong = pageledger(runtime, "projections", "repair", "--skip", "jobs", "--event", str(poison + 5))
    assert wrong.returncode == 2 and "no event" in wrong.stderr
    skipped = pageledger(runtime, "projections", "repair", "--skip", "jobs", "--event", str(poison),
                         "--reason", "size from a broken agent")
    assert skipped.returncode == 0, skipped.stderr
    assert "will skip the event" in skipped.stderr  # the audit line

    clock.now += 1.0  # the runner looks for repairs at most once a second, then tries at once
    follower.run_once()
    assert not follower.failures and count(runtime.reader, jobs) == 2
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(projection_failures)).scalar_one() == 0
        [skip] = conn.execute(sa.select(projection_skips)).mappings().all()
        assert (skip["name"], skip["position"], skip["reason"]) == ("jobs", poison, "size from a broken agent")
        assert projection_positions(conn)["jobs"] == poison + 1
    health = client.simulate_get("/healthz")
    assert health.json["failed"] == [] and not [p for p in health.json["problems"] if "projection" in p]
    listed = pageledger(runtime, "projections", "repair")
    assert listed.returncode == 0 and "no projection has failed" in listed.stdout
    assert f"skipped jobs" in listed.stdout and "size from a broken agent" in listed.stdout
    # A rebuild keeps the decision: the skipped event stays skipped, the rest is replayed.
    rebuilt = pageledger(runtime, "projections", "rebuild", "jobs")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert count(runtime.reader, jobs) == 2


POISON_STORES_HOLD = [
    dict(printer="off\x00ice"), dict(document="a\x00b.pdf"), dict(client_host="ws\x001"), dict(user="bo\x00b"),
    dict(paper="A4\x00"), dict(pages=1_000_000, copies=10_000, sheets=10_000_000_000, colour_pages=1_000_000),
    dict(submitted_at=-62_135_596_800_000_000),  # 0001-01-01
    dict(submitted_at=253_402_300_799_000_000),  # 9999-12-31T23:59:59
    dict(submitted_at=10**18),  # the year 33658: beyond what a datetime holds
    dict(submitted_at=-2**62),  # long before the year 1
]


def test_the_poison_events_stores_hold_are_applied_and_shown_after_a_rebuild(runtime):
    _, admin = runtime.issue_token(name="ops", role="admin")
    for facts in POISON_STORES_HOLD:
        record(runtime, **facts)
    record(runtime)
    follower = runtime.all_together()
    follower.rebuild()
    assert follower.failures == {}
    client = falcon.testing.TestClient(create_app(runtime))
    auth = {"Authorization": f"Bearer {admin}"}

    listed = client.simulate_get("/api/v1/jobs", params={"limit": "100"}, headers=auth)
    assert listed.status_code == 200, listed.text
    shown = {j["job"]: j for j in listed.json["jobs"]}
    assert len(shown) == len(POISON_STORES_HOLD) + 1
    by_printer = {j["printer"] for j in shown.values()}
    assert "off\ufffdice" in by_printer
    assert {j["document"] for j in shown.values()} >= {"a\ufffdb.pdf"}
    big = [j for j in shown.values() if j["pages"] == 1_000_000]
    assert [(j["copies"], j["sheets"]) for j in big] == [(10_000, 10_000_000_000)]
    clamped = sorted(j["submitted_at"] for j in shown.values() if j.get("submitted_at_clamped"))
    assert clamped == ["1970-01-01T00:00:00+00:00"] * 2 + ["9999-12-31T23:59:59.999999+00:00"]
    assert "9999-12-31T23:59:59+00:00" in {j["submitted_at"] for j in shown.values()}  # in range: as stored

    days = client.simulate_get("/api/v1/usage", params={"group_by": "day"}, headers=auth)
    assert days.status_code == 200, days.text
    totals = {t["day"]: t for t in days.json["totals"]}
    # A usage period ends at most a day after the server's clock (api/reports.py), so the jobs an
    # old store held at 9999-12-31 are listed (above) but in no usage period; 1970 ones are.
    assert "1970-01-01" in totals and "9999-12-31" not in totals
    assert all(t["impressions"] >= t["colour_impressions"] >= 0 for t in totals.values())
    for group in ("user", "printer"):
        assert client.simulate_get("/api/v1/usage", params={"group_by": group}, headers=auth).status_code == 200
    health = client.simulate_get("/healthz")
    assert health.json["failed"] == []
