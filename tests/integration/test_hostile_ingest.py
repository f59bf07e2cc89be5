"""Hostile input at ingest and in report queries (issue 14), on SQLite and PostgreSQL.

What an agent posts is refused with a 400 naming the bad field unless every store and every
read model can hold and show it; nothing of a refused batch is written, and the projections
keep running. Report queries refuse cursors, limits and times outside their ranges alike.
"""
from __future__ import annotations

from datetime import datetime, timezone

import falcon.testing
import pytest

from api.app import create_app
from domain.costs import MAX_PAGE_PRICE, CostSchedule
from domain.units import to_micros
from tools.sample_jobs import sample_jobs

# The server's clock in these tests (sample jobs were printed in January 2026).
NOW = to_micros(datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc))


@pytest.fixture
def api(runtime):
    runtime.clock = lambda: NOW
    _, agent = runtime.issue_token(name="printsrv1", role="agent")
    _, admin = runtime.issue_token(name="reports", role="admin")
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    return _Api(runtime, client, {"Authorization": f"Bearer {agent}"}, {"Authorization": f"Bearer {admin}"})


class _Api:
    def __init__(self, runtime, client, agent, admin) -> None:
        self.runtime, self.client, self.agent, self.admin = runtime, client, agent, admin

    def post(self, *jobs):
        return self.client.simulate_post("/Services/jobs", json={"jobs": list(jobs)}, headers=self.agent)

    def get(self, path, **params):
        return self.client.simulate_get(path, params=params, headers=self.admin)

    def head(self) -> int:
        return self.runtime.followers["jobs"].head()


def _job(seed: int = 1, **change):
    return dict(next(sample_jobs(1, seed=seed)), **change)


HOSTILE_JOBS = [
    ({"printer": "off\u0000ice"}, "jobs.1.printer"),
    ({"document": "off\u0000ice"}, "jobs.1.document"),
    ({"client_host": "off\u0000ice"}, "jobs.1.client_host"),
    ({"job_key": "off\u0000ice"}, "jobs.1.job_key"),
    ({"user": "off\u0000ice"}, "jobs.1.user"),
    ({"pages": 1_000_000, "copies": 10_000, "colour_pages": 0}, "jobs.1.pages"),
    ({"submitted_at": "0001-01-01T00:00:00+23:59"}, "jobs.1.submitted_at"),
    ({"submitted_at": "9999-12-31T23:59:59-23:59"}, "jobs.1.submitted_at"),
    *(({"user": blank}, "jobs.1.user") for blank in (" ", "\t", "\u00a0", "\u001e")),
]


@pytest.mark.parametrize("change,field", HOSTILE_JOBS)
def test_a_hostile_job_is_refused_naming_its_field_and_nothing_of_its_batch_is_written(api, change, field):
    head = api.head()
    r = api.post(_job(seed=2), _job(**change))
    assert r.status_code == 400, r.text
    assert field in r.json["errors"], r.json
    assert api.head() == head  # the good job of the batch is not recorded either
    # The read models keep following the log: a good job afterwards is reported.
    assert api.post(_job(seed=3)).status_code == 200
    api.runtime.catch_up()
    r = api.get("/api/v1/jobs")
    assert r.status_code == 200 and len(r.json["jobs"]) == 1, r.text
    for group_by in ("user", "printer", "day"):
        assert api.get("/api/v1/usage", group_by=group_by).status_code == 200


def test_the_largest_job_allowed_is_tracked_and_reported_with_its_sheets_and_cost(api):
    dearest = CostSchedule(mono_page=MAX_PAGE_PRICE, colour_page=MAX_PAGE_PRICE)
    api.runtime.set_cost_schedule("bigjob", dearest)
    r = api.post(_job(printer="bigjob", pages=1_000, copies=1_000, colour_pages=1_000, duplex=False))
    assert r.status_code == 200, r.text
    [outcome] = r.json["results"]
    assert (outcome["sheets"], outcome["cost"]) == (1_000_000, "100000000000.0000")
    api.runtime.catch_up()
    [job] = api.get("/api/v1/jobs").json["jobs"]  # denied here (no licence): reported, not in the usage totals
    # ... and never charged (issue 16): a denied job shows no cost.
    assert (job["sheets"], job["status"], job["cost"]) == (1_000_000, "denied", None)


BAD_QUERIES = [
    ("/api/v1/jobs", {"cursor": str(2 ** 63)}, "cursor"),
    ("/api/v1/jobs", {"cursor": str(10 ** 40)}, "cursor"),
    ("/api/v1/jobs", {"cursor": "0"}, "cursor"),
    ("/api/v1/jobs", {"cursor": "-1"}, "cursor"),
    ("/api/v1/jobs", {"cursor": "abc"}, "cursor"),
    ("/api/v1/jobs", {"cursor": "1" * 5000}, "cursor"),  # more digits than int() converts
    ("/api/v1/jobs", {"limit": "0"}, "limit"),
    ("/api/v1/jobs", {"limit": str(2 ** 64)}, "limit"),
    ("/api/v1/jobs", {"limit": "ten"}, "limit"),
    ("/api/v1/jobs", {"from": "0001-01-01T00:00:00+23:59"}, "from"),
    ("/api/v1/jobs", {"to": "9999-12-31T23:59:59-23:59"}, "to"),
    ("/api/v1/jobs", {"from": "2026-01-01T00:00:00"}, "from"),  # no offset
    ("/api/v1/jobs", {"user": "a\u0000b"}, "user"),
    ("/api/v1/jobs", {"printer": "a\u0000b"}, "printer"),
    ("/api/v1/usage", {"from": "1969-12-31T23:59:59Z"}, "from"),
    ("/api/v1/usage", {"to": "2026-06-02T12:00:01Z"}, "to"),
    ("/api/v1/usage", {"group_by": "week"}, "group_by"),
]


@pytest.mark.parametrize("path,params,field", BAD_QUERIES)
def test_a_bad_report_query_is_a_400_naming_the_parameter(api, path, params, field):
    r = api.get(path, **params)
    assert r.status_code == 400, r.text
    assert list(r.json["errors"]) == [field], r.json


def test_report_queries_at_the_edges_of_their_ranges_are_answered(api):
    assert api.post(_job()).status_code == 200
    api.runtime.catch_up()
    r = api.get("/api/v1/jobs", cursor=str(2 ** 63 - 1), limit="1000", **{"from": "1970-01-01T00:00:00Z",
                                                                         "to": "2026-06-02T12:00:00Z"})
    assert r.status_code == 200 and len(r.json["jobs"]) == 1, r.text
    r = api.get("/api/v1/usage", group_by="day", **{"from": "1970-01-01T00:00:00Z", "to": "2026-06-02T12:00:00Z"})
    assert r.status_code == 200, r.text  # the job is denied (no licence): not in the totals
