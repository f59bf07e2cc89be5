"""Hostile input over HTTP, as `pageledger up` runs it: refused with a 400 naming the field,
never a 500, and the read models go on following the log."""
from __future__ import annotations

import requests

from tests.conftest import wait_until
from tools.sample_jobs import sample_jobs


def test_hostile_jobs_and_cursors_are_400s_naming_the_field_and_the_reports_keep_up(live_server):
    s = live_server
    agent, admin = s.headers(s.agent_token), s.headers(s.admin_token)

    def post(job):
        return requests.post(s.url + "/Services/jobs", json={"jobs": [job]}, headers=agent, timeout=30)

    hostile = [({"user": " "}, "jobs.0.user"), ({"user": "\u001e"}, "jobs.0.user"),
               ({"printer": "off\u0000ice"}, "jobs.0.printer"), ({"user": "off\u0000ice"}, "jobs.0.user"),
               ({"pages": 1_000_000, "copies": 10_000, "colour_pages": 0}, "jobs.0.pages"),
               ({"submitted_at": "0001-01-01T00:00:00+23:59"}, "jobs.0.submitted_at")]
    for seed, (change, field) in enumerate(hostile, start=10):
        r = post(dict(next(sample_jobs(1, seed=seed)), **change))
        assert r.status_code == 400 and field in r.json()["errors"], (change, r.status_code, r.text)
    r = requests.get(s.url + "/api/v1/jobs", params={"cursor": str(2 ** 63)}, headers=admin, timeout=10)
    assert r.status_code == 400 and list(r.json()["errors"]) == ["cursor"], r.text
    good = next(sample_jobs(1))
    assert post(good).status_code == 200
    jobs = wait_until(lambda: requests.get(s.url + "/api/v1/jobs", headers=admin, timeout=10).json()["jobs"])
    assert [j["user"] for j in jobs] == [good["user"]]
    r = requests.get(s.url + "/api/v1/usage", params={"group_by": "day"}, headers=admin, timeout=10)
    assert r.status_code == 200, r.text
