"""The console's pages in-process on both stores (falcon's test client over the real runtime):
who may see what, forms that refuse bad input beside the field, the CSV guard, and sessions that
end on the server. The browser tests (tests/e2e/test_console_browser.py) click through the same."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone

import falcon.testing
import msgspec
import pytest

from api.app import create_app
from api.console.forms import caught_up
from commands.setup import SetupRequest

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def console(runtime):
    runtime.licensing.install_trial()
    runtime.complete_setup(SetupRequest(network_type="local", ldap=None, licence_mode="trial", key="", company="",
                                        licence_file="", admin_login="root", admin_password="root-pw-123"))
    runtime.catch_up()
    runtime.start_projections()  # as a server runs them: pages wait for their read model after a change
    return falcon.testing.TestClient(create_app(runtime))


def settled(runtime) -> None:
    assert caught_up(runtime.progress, tuple(runtime.progress.positions()), seconds=20)


def login(client, user: str, password: str) -> tuple[dict, str]:
    r = client.simulate_post("/Authentication/Login", json={"login": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Cookie": f"pl_session={r.cookies['pl_session'].value}"}, r.json["csrf_token"]


def post_job(runtime, user: str, document: str) -> None:
    from commands.job_reports import parse_batch

    now = datetime.now(timezone.utc).isoformat()
    batch = parse_batch(msgspec.json.encode({"jobs": [{"job_key": f"k/{user}/{document}", "user": user, "printer": "office",
                                   "client_host": "h", "document": document, "submitted_at": now, "pages": 2,
                                   "copies": 1, "colour_pages": 0, "duplex": False, "paper": "A4", "size": 1,
                                   "pdl": "pdf"}]}), runtime.clock())
    runtime.track_jobs(batch)
    settled(runtime)


def test_an_admin_adds_a_user_and_bad_input_is_named_beside_the_field_escaped(console, runtime):
    cookie, csrf = login(console, "root", "root-pw-123")
    r = console.simulate_post("/users", headers={**cookie, **FORM},
                              body=f"csrf_token={csrf}&login=%3Cb%3Ex&password=short&role=user")
    assert r.status_code == 400 and "password" in r.text and "<b>x" not in r.text
    r = console.simulate_post("/users", headers={**cookie, **FORM},
                              body=f"csrf_token={csrf}&login=erin&password=erin-pw-12345&role=auditor")
    assert r.status_code == 303 and r.headers["Location"] == "/users?done=added"
    page = console.simulate_get("/users", headers=cookie, query_string="done=added")
    assert "erin" in page.text and "User added." in page.text, page.text[-3000:]  # caught up before the redirect


def test_an_auditor_reads_but_cannot_change_and_a_user_sees_only_their_own(console, runtime):
    runtime.add_local_user(login="aud", password="aud-pw-12345", role="auditor", profile={})
    runtime.add_local_user(login="uma", password="uma-pw-12345", role="user", profile={})
    settled(runtime)
    post_job(runtime, "uma", "uma's letter.pdf")
    post_job(runtime, "vic", "=cmd|' /C calc'!A0")
    auditor, csrf = login(console, "aud", "aud-pw-12345")
    assert console.simulate_get("/users", headers=auditor).status_code == 200
    assert "Add a local user" not in console.simulate_get("/users", headers=auditor).text
    r = console.simulate_post("/users", headers={**auditor, **FORM},
                              body=f"csrf_token={csrf}&login=x&password=xxxx-xxxx-xx&role=admin")
    assert r.status_code == 403 and "text/html" in r.headers["Content-Type"]
    rows = list(csv.reader(io.StringIO(console.simulate_get("/jobs.csv", headers=auditor).text)))
    assert rows[0][0] == "job" and {r[5] for r in rows[1:]} == {"uma's letter.pdf", "'=cmd|' /C calc'!A0"}

    user, _ = login(console, "uma", "uma-pw-12345")
    assert console.simulate_get("/", headers=user).headers["Location"] == "/my/jobs"
    mine = console.simulate_get("/my/jobs", headers=user, query_string="user=vic")
    assert "uma&#39;s letter.pdf" in mine.text and "calc" not in mine.text
    csv_rows = list(csv.reader(io.StringIO(console.simulate_get("/jobs.csv", query_string="user=vic",
                                                                 headers=user).text)))
    assert [r[2] for r in csv_rows[1:]] == ["uma"]
    vic_job = re.search(r'href="/jobs/(\d+)"', console.simulate_get("/jobs", headers=auditor,
                                                                    query_string="user=vic").text).group(1)
    assert console.simulate_get(f"/jobs/{vic_job}", headers=user).status_code == 404
    for path in ("/users", "/admin/settings", "/printers", "/admin/licensing", "/audit"):
        assert console.simulate_get(path, headers=user).status_code == 403, path


def test_no_session_goes_to_the_login_page_and_back_and_logout_ends_the_session_everywhere(console):
    r = console.simulate_get("/jobs", query_string="state=denied")
    assert r.status_code == 303 and r.headers["Location"] == "/Authentication/Login?next=%2Fjobs%3Fstate%3Ddenied"
    page = console.simulate_get("/Authentication/Login", query_string="next=//evil.example/")
    assert 'action="/Authentication/Login?next=/"' in page.text or "next=%2F\"" in page.text
    cookie, csrf = login(console, "root", "root-pw-123")
    assert console.simulate_post("/Authentication/Logout", headers={**cookie, **FORM},
                                 body="csrf_token=wrong").status_code == 403
    assert console.simulate_get("/admin/settings", headers=cookie).status_code == 200  # still logged in
    r = console.simulate_post("/Authentication/Logout", headers={**cookie, **FORM}, body=f"csrf_token={csrf}")
    assert r.status_code == 303
    assert console.simulate_get("/admin/settings", headers=cookie).status_code == 303
    assert console.simulate_get("/api/v1/settings", headers=cookie).status_code == 401


def test_a_printers_prices_are_set_from_the_page_and_bad_ones_refused(console, runtime):
    post_job(runtime, "uma", "a.pdf")
    cookie, csrf = login(console, "root", "root-pw-123")
    r = console.simulate_post("/printers", headers={**cookie, **FORM},
                              body=f"csrf_token={csrf}&printer=office&mono_page=-1&colour_page=abc")
    assert r.status_code == 400 and "prices cannot be negative" in r.text and "not an amount" in r.text
    r = console.simulate_post("/printers", headers={**cookie, **FORM},
                              body=f"csrf_token={csrf}&printer=office&mono_page=0.05&colour_page=0.25")
    assert r.status_code == 303
    assert "0.0500 a mono page" in console.simulate_get("/printers", headers=cookie).text
    r = console.simulate_post("/printers", headers={**cookie, **FORM}, body=f"csrf_token={csrf}&printer=nope&secure=on")
    assert r.status_code == 400
