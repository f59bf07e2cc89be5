"""The server over HTTP, as `pageledger up` runs it (SQLite) and as `serve` on PostgreSQL."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.conftest import ROOT, make_live_server, new_database_url, wait_until
from tools.sample_jobs import sample_jobs


def post_jobs(server, jobs, token=None):
    return requests.post(server.url + "/Services/jobs", json={"jobs": jobs},
                         headers=server.headers(token or server.agent_token), timeout=30)


def get_jobs(server, token=None, **params):
    r = requests.get(server.url + "/api/v1/jobs", params=params,
                     headers=server.headers(token or server.admin_token), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def issue_token(server, role, name, subject=""):
    out = subprocess.run([sys.executable, "-m", "pageledger.cli", "tokens", "issue", "--role", role,
                          "--name", name, "--subject", subject],
                         cwd=server.workdir, env=server.env, capture_output=True, text=True, check=True)
    import json
    return json.loads(out.stdout)


def test_post_then_list_shows_the_job_with_its_cost_and_reposting_changes_nothing(live_server):
    job = dict(next(sample_jobs(1)), user="alice", printer="office", pages=3, copies=2, colour_pages=1,
               duplex=False, document="Budget 2027.xlsx")
    r = post_jobs(live_server, [job])
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert (result["status"], result["decision"], result["sheets"]) == ("tracked", "print", 6)
    # default prices: 0.10 mono, 0.50 colour → (2*0.10 + 0.50) * 2 copies
    assert result["cost"] == "1.4000"
    listed = wait_until(lambda: get_jobs(live_server)["jobs"])
    assert [(j["user"], j["printer"], j["document"], j["sheets"], j["cost"]) for j in listed] == \
        [("alice", "office", "Budget 2027.xlsx", 6, "1.4000")]
    again = post_jobs(live_server, [job]).json()["results"][0]
    assert again["status"] == "duplicate" and again["cost"] == "1.4000"
    health = requests.get(live_server.url + "/healthz", timeout=5).json()
    wait_until(lambda: requests.get(live_server.url + "/healthz", timeout=5).json()["projections"]["jobs"]
               == health["events"])
    assert len(get_jobs(live_server)["jobs"]) == 1


def test_bad_input_names_each_field_and_writes_nothing(live_server):
    events_before = requests.get(live_server.url + "/healthz", timeout=5).json()["events"]
    good, bad = list(sample_jobs(2))
    bad.update(pages="ten", user="", submitted_at="yesterday")
    r = post_jobs(live_server, [good, bad])
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"jobs.1.pages", "jobs.1.user", "jobs.1.submitted_at"}
    r = requests.post(live_server.url + "/Services/jobs", data="{not json",
                      headers={**live_server.headers(live_server.agent_token), "Content-Type": "application/json"},
                      timeout=5)
    assert r.status_code == 400 and "title" in r.json()
    r = requests.get(live_server.url + "/api/v1/jobs", params={"limit": "0", "from": "nope"},
                     headers=live_server.headers(live_server.admin_token), timeout=5)
    assert r.status_code == 400 and set(r.json()["errors"]) == {"limit", "from"}
    assert requests.get(live_server.url + "/healthz", timeout=5).json()["events"] == events_before


def test_every_endpoint_but_health_and_openapi_needs_the_right_token(live_server):
    for method, path in (("post", "/Services/jobs"), ("get", "/Services/policy"), ("get", "/api/v1/jobs"),
                         ("get", "/api/v1/usage")):
        r = requests.request(method, live_server.url + path, timeout=5)
        assert r.status_code == 401, path
        r = requests.request(method, live_server.url + path, headers=live_server.headers("plt_forged"), timeout=5)
        assert r.status_code == 401, path
    assert requests.get(live_server.url + "/api/v1/jobs", headers=live_server.headers(live_server.agent_token),
                        timeout=5).status_code == 403
    assert post_jobs(live_server, list(sample_jobs(1)), token=live_server.admin_token).status_code == 403
    assert requests.get(live_server.url + "/healthz", timeout=5).status_code == 200
    spec = requests.get(live_server.url + "/openapi.json", timeout=5).json()
    assert "/Services/jobs" in spec["paths"]
    assert "pages" in spec["components"]["schemas"]["JobReport"]["properties"]


def test_a_user_sees_only_their_own_jobs_and_revoked_tokens_stop_working(live_server):
    jobs = [dict(j, user="bob" if i % 2 else "carol") for i, j in enumerate(sample_jobs(10))]
    assert post_jobs(live_server, jobs).status_code == 200
    bob = issue_token(live_server, "user", "bob")
    wait_until(lambda: len(get_jobs(live_server)["jobs"]) == 10)
    mine = get_jobs(live_server, token=bob["token"], user="carol")["jobs"]
    assert len(mine) == 5 and {j["user"] for j in mine} == {"bob"}
    usage = requests.get(live_server.url + "/api/v1/usage", headers=live_server.headers(bob["token"]),
                         timeout=5).json()["totals"]
    assert [u["user"] for u in usage] == ["bob"]
    subprocess.run([sys.executable, "-m", "pageledger.cli", "tokens", "revoke", bob["token_id"]],
                   cwd=live_server.workdir, env=live_server.env, check=True, capture_output=True)
    wait_until(lambda: requests.get(live_server.url + "/api/v1/jobs", headers=live_server.headers(bob["token"]),
                                    timeout=5).status_code == 401, timeout=15)


def test_usage_groups_by_printer_and_day_and_filters_by_time(live_server):
    assert post_jobs(live_server, list(sample_jobs(200))).status_code == 200
    wait_until(lambda: requests.get(live_server.url + "/healthz", timeout=5).json()["projections"]["usage_daily"] > 0)
    h = live_server.headers(live_server.admin_token)
    wait_until(lambda: sum(t["jobs"] for t in requests.get(live_server.url + "/api/v1/usage", params={"group_by": "printer"},
                                                           headers=h, timeout=5).json()["totals"]) == 200)
    days = requests.get(live_server.url + "/api/v1/usage", params={"group_by": "day"}, headers=h, timeout=5).json()["totals"]
    assert days[0]["day"] == "2026-01-05"
    first_day = requests.get(live_server.url + "/api/v1/usage", headers=h, timeout=5,
                             params={"group_by": "day", "from": "2026-01-05T00:00:00Z",
                                     "to": "2026-01-06T00:00:00Z"}).json()["totals"]
    assert [d["day"] for d in first_day] == ["2026-01-05"]
    assert requests.get(live_server.url + "/api/v1/usage", params={"group_by": "colour"}, headers=h,
                        timeout=5).status_code == 400


def test_serve_on_postgresql_tracks_and_lists(tmp_path, request):
    url = new_database_url("postgresql", tmp_path, request)
    server = make_live_server(tmp_path, database_url=url)
    server.start()
    try:
        assert post_jobs(server, list(sample_jobs(50))).status_code == 200
        wait_until(lambda: len(get_jobs(server, limit=100)["jobs"]) == 50)
    finally:
        server.stop()
