"""The /release page and the release API in the real application (falcon's test client on the real
runtime, both stores): a user sees and releases only their own jobs, HTML is escaped, the form
needs the session's CSRF token, and bad input is a 4xx naming the field."""
from __future__ import annotations

import re

import falcon.testing
import pytest

from adapters.sessions import SESSION_COOKIE
from api.app import create_app
from commands.printers import ReleaseSettings
from tests.integration.test_release_commands import held


@pytest.fixture
def client(runtime):
    runtime.set_secure_hold("vault", True)
    runtime.set_release_settings("vault", ReleaseSettings(group="g1"))
    runtime.set_secure_hold("lobby", True)
    runtime.set_release_settings("lobby", ReleaseSettings(group="g1"))
    return falcon.testing.TestClient(create_app(runtime))


def login(runtime, who: str, role: str = "user") -> tuple[dict, str]:
    cookie, session = runtime.sessions.issue(who, role)
    return {SESSION_COOKIE: cookie}, session.csrf


def test_the_page_lists_only_your_jobs_escaped_and_releases_them_with_the_csrf_token(runtime, client):
    [mine], _ = held(runtime, document='<script>alert("x")</script>')
    [theirs], _ = held(runtime, user="bob", document="bob's secret")
    cookies, csrf = login(runtime, "alice")

    page = client.simulate_get("/release", cookies=cookies)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert mine in page.text and theirs not in page.text and "secret" not in page.text
    assert re.search(rf'name="csrf_token" value="{re.escape(csrf)}"', page.text)

    form = {"action": "release", "job": mine, "printer": "lobby"}
    forged = client.simulate_post("/release", cookies=cookies, body=_form({**form}),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert forged.status_code == 403  # no CSRF token: nothing released
    wrong = client.simulate_post("/release", cookies=cookies, body=_form({**form, "job": theirs, "csrf_token": csrf}),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert wrong.status_code == 400 and "no held job of yours" in wrong.text
    done = client.simulate_post("/release", cookies=cookies, body=_form({**form, "csrf_token": csrf}),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "1 job(s) released" in done.text
    runtime.catch_up()
    assert mine not in client.simulate_get("/release", cookies=cookies).text

    # An admin sees everyone's waiting jobs through the API; a user only their own.
    admin, _ = login(runtime, "root", "admin")
    listed = client.simulate_get("/api/v1/held-jobs", cookies=admin).json["jobs"]
    assert [j["job_id"] for j in listed] == [theirs]
    assert client.simulate_get("/api/v1/held-jobs", cookies=cookies).json["jobs"] == []


def test_the_release_api_names_the_bad_field(runtime, client):
    [mine], _ = held(runtime)
    cookies, csrf = login(runtime, "alice")
    headers = {"X-CSRF-Token": csrf}

    def post(path, body):
        return client.simulate_post(path, cookies=cookies, headers=headers, json=body)

    assert "jobs" in post("/api/v1/held-jobs/release", {}).json["errors"]
    assert "jobs" in post("/api/v1/held-jobs/release", {"jobs": [mine], "all": True}).json["errors"]
    assert "jobs.0" in post("/api/v1/held-jobs/release", {"jobs": ["\x00" * 3]}).json["errors"]
    assert "printer" in post("/api/v1/held-jobs/release", {"jobs": [mine], "printer": "elsewhere"}).json["errors"]
    assert "jobs.0" in post("/api/v1/held-jobs/delete", {"jobs": ["7" * 64]}).json["errors"]
    assert post("/api/v1/held-jobs/release", {"jobs": [mine] * 1001}).status_code == 400
    r = post("/api/v1/held-jobs/release", {"all": True})
    assert r.status_code == 200 and r.json["jobs"] == [mine]
    runtime.catch_up()
    assert "jobs" in post("/api/v1/held-jobs/release", {"all": True}).json["errors"]  # nothing left to release
    # Only the agent (the release service) takes orders and reports outcomes.
    assert client.simulate_get("/Services/releases", cookies=cookies).status_code == 403
    admin, admin_csrf = login(runtime, "root", "admin")
    bad = client.simulate_put("/api/v1/printers/vault/release", cookies=admin, headers={"X-CSRF-Token": admin_csrf},
                              json={"hold_seconds": 5, "code_mode": "telepathy"})
    assert bad.status_code == 400 and {"hold_seconds", "code_mode"} <= set(bad.json["errors"])
    good = client.simulate_put("/api/v1/printers/vault/release", cookies=admin, headers={"X-CSRF-Token": admin_csrf},
                               json={"hold_seconds": 600, "code_mode": "generated", "code_length": 8})
    assert good.status_code == 200 and good.json["code_length"] == 8


def _form(fields: dict) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in fields.items()})


def test_each_release_service_gets_only_the_orders_of_the_release_queues_it_names(runtime, client):
    """Two print servers, one release service each: an order goes only to the service that serves
    the release queue it prints on (pull printing included); one that names no queue gets all."""
    from tests.integration.test_release_commands import ADMIN

    _, token = runtime.issue_token(name="printsrv", role="agent")
    agent = {"Authorization": f"Bearer {token}"}
    [at_vault], _ = held(runtime, document="to vault")
    [pulled], _ = held(runtime, document="sent to vault, printed at lobby")
    [at_lobby], _ = held(runtime, printer="lobby", document="to lobby")
    runtime.release_jobs([at_vault, at_lobby], ADMIN)
    runtime.release_jobs([pulled], ADMIN, printer="lobby")
    runtime.catch_up()

    def orders(query: str) -> list[str]:
        r = client.simulate_get("/Services/releases", query_string=query, headers=agent)
        assert r.status_code == 200, r.text
        return sorted(o["job_id"] for o in r.json["orders"])

    assert orders("queue=vault-release") == [at_vault]
    assert orders("queue=LOBBY-release&queue=annex-release") == sorted([pulled, at_lobby])  # CUPS names: any case
    assert orders("queue=annex-release") == []
    assert orders("wait=0") == sorted([at_vault, pulled, at_lobby])  # an older service names none: every order

    def refused(query: str) -> list[str]:
        r = client.simulate_get("/Services/releases", query_string=query, headers=agent)
        assert r.status_code == 400, (query, r.text)
        return list(r.json["errors"])

    assert any(k.startswith("queue") for k in refused("queue=vault"))  # not a release queue
    assert any(k.startswith("queue") for k in refused("queue=vault%01-release"))  # a control character
    assert any(k.startswith("queue") for k in refused("queue=" + "v" * 128 + "-release"))  # too long
    assert any(k.startswith("queue") for k in refused("queue="))  # empty
    assert any(k.startswith("queue") for k in refused("&".join(f"queue=p{i}-release" for i in range(65))))
