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


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_the_page_lists_only_your_jobs_escaped_and_releases_them_with_the_csrf_token(runtime, client):
    [mine], _ = held(runtime, document='<script>alert("x")</script>')
    [theirs], _ = held(runtime, user="bob", document="bob's secret")
    cookies, csrf = login(runtime, "alice")

    page = client.simulate_get("/release", cookies=cookies)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text  # no inline script: the console's CSP allows none
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert mine in page.text and theirs not in page.text and "secret" not in page.text
    assert re.search(rf'name="csrf_token" value="{re.escape(csrf)}"', page.text)
    assert "2 page(s)" in page.text  # pages and cost of each job
    # Its group's other secure printer is offered; ?printer= (from a label on the printer) is chosen first.
    page = client.simulate_get("/release", cookies=cookies, query_string="printer=lobby")
    assert '<option value="lobby" selected>lobby</option>' in page.text

    form = {"action": "release", "job": mine, "printer": "lobby"}
    forged = client.simulate_post("/release", cookies=cookies, body=_form({**form}), headers=FORM)
    assert forged.status_code == 403  # no CSRF token: nothing released
    wrong = client.simulate_post("/release", cookies=cookies, body=_form({**form, "job": theirs, "csrf_token": csrf}),
                                 headers=FORM)
    assert wrong.status_code == 400 and "no held job of yours" in wrong.text
    outside = client.simulate_post("/release", cookies=cookies, headers=FORM,
                                   body=_form({**form, "printer": "elsewhere", "csrf_token": csrf}))
    assert outside.status_code == 400 and "printer" in outside.text and 'role="alert"' in outside.text
    runtime.catch_up()
    assert {j.job_id for j in held_jobs(runtime)} == {mine, theirs}  # refused: nothing released
    done = client.simulate_post("/release", cookies=cookies, body=_form({**form, "csrf_token": csrf}), headers=FORM)
    assert done.status_code == 303 and done.headers["location"] == "/release?done=released&printer=lobby"
    runtime.catch_up()
    after = client.simulate_get("/release", cookies=cookies, query_string="done=released")
    assert mine not in after.text and "Released: collect the jobs at the printer." in after.text
    assert [j.job_id for j in held_jobs(runtime)] == [theirs]

    # An admin sees everyone's waiting jobs through the API; a user only their own.
    admin, _ = login(runtime, "root", "admin")
    listed = client.simulate_get("/api/v1/held-jobs", cookies=admin).json["jobs"]
    assert [j["job_id"] for j in listed] == [theirs]
    assert client.simulate_get("/api/v1/held-jobs", cookies=cookies).json["jobs"] == []
    # On /release an admin sees their own held jobs only (everyone's are on Secure Print).
    assert theirs not in client.simulate_get("/release", cookies=admin).text


def test_a_user_deletes_their_held_job_from_the_page_and_a_tick_is_required(runtime, client):
    [mine], _ = held(runtime, document="draft to bin")
    [kept], _ = held(runtime, document="keep me")
    cookies, csrf = login(runtime, "alice")
    head = runtime.app.recorder.max_notification_id()
    none = client.simulate_post("/release", cookies=cookies, headers=FORM,
                                body=_form({"action": "delete", "csrf_token": csrf}))
    assert none.status_code == 400 and "tick at least one job" in none.text
    odd = client.simulate_post("/release", cookies=cookies, headers=FORM,
                               body=_form({"action": "shred", "job": mine, "csrf_token": csrf}))
    assert odd.status_code == 400 and "action: release or delete" in odd.text
    assert runtime.app.recorder.max_notification_id() == head  # refused: nothing written
    done = client.simulate_post("/release", cookies=cookies, headers=FORM,
                                body=_form({"action": "delete", "job": mine, "csrf_token": csrf}))
    assert done.status_code == 303 and done.headers["location"] == "/release?done=deleted"
    runtime.catch_up()
    assert [j.job_id for j in held_jobs(runtime)] == [kept]
    page = client.simulate_get("/release", cookies=cookies, query_string="done=deleted")
    assert "Deleted." in page.text and "draft to bin" not in page.text and "keep me" in page.text


def held_jobs(runtime):
    from projections.held_jobs import waiting_jobs

    with runtime.reader.connect() as conn:
        return waiting_jobs(conn, None)


def test_without_a_session_release_sends_a_phone_to_its_own_login_page(client):
    r = client.simulate_get("/release", query_string="printer=lobby")
    assert r.status_code == 303 and r.headers["location"] == "/release/login?printer=lobby"
    page = client.simulate_get("/release/login", query_string="printer=lobby")
    assert page.status_code == 200
    assert "Card number" in page.text and "PIN" in page.text and "Password" in page.text
    assert '<input type="hidden" name="printer" value="lobby">' in page.text


def _login_form(client, **fields):
    page = client.simulate_get("/release/login")
    token = page.cookies["pl_csrf"].value
    return client.simulate_post("/release/login", cookies={"pl_csrf": token}, headers=FORM,
                                body=_form({"csrf_token": token, **fields}))


def test_a_card_and_its_pin_log_in_a_wrong_pin_is_refused_then_throttled_and_bad_input_writes_nothing(runtime, client):
    from domain.users import LOCAL_SOURCE
    import sqlalchemy as sa

    from projections.login_audit import login_audit

    runtime.licensing.install_trial()
    runtime.add_local_user(login="kim", password="kim-password-1", role="user", profile={})
    kim = runtime.app.user_id(LOCAL_SOURCE, "kim")
    runtime.catch_up()
    runtime.set_card(kim, "CAFE01", by="root")
    runtime.reset_pin(kim, "482915", by="root")
    runtime.catch_up()
    [mine], _ = held(runtime, user="kim", document="kim's held report")

    # Malformed input: 400, said beside the field, nothing written (not even a login attempt).
    head = runtime.app.recorder.max_notification_id()
    bad = _login_form(client, method="card", card="CA FE", pin="12")
    assert bad.status_code == 400
    assert 'aria-invalid="true" aria-describedby="card-card-error"' in bad.text
    assert "letters and digits only" in bad.text and "4 to 12 digits" in bad.text
    assert 'value="CA FE"' in bad.text  # what was entered stays
    no_csrf = client.simulate_post("/release/login", headers=FORM, body=_form({"method": "card", "card": "CAFE01",
                                                                              "pin": "482915"}))
    assert no_csrf.status_code == 403
    assert runtime.app.recorder.max_notification_id() == head

    # A wrong PIN and an unknown card get the same answer; each is audited.
    wrong = _login_form(client, method="card", card="CAFE01", pin="000000")
    assert wrong.status_code == 401 and "wrong card number or PIN" in wrong.text and "pl_session" not in wrong.cookies
    unknown = _login_form(client, method="card", card="BEEF99", pin="482915")
    assert unknown.status_code == 401 and "wrong card number or PIN" in unknown.text
    assert runtime.app.recorder.max_notification_id() == head + 2  # two LoginAttempt events
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        audited = conn.execute(sa.select(login_audit.c.login, login_audit.c.outcome).order_by(login_audit.c.seq)).all()
    assert [tuple(r) for r in audited][-2:] == [("kim", "bad_credentials"), ("card", "bad_credentials")]

    # The right card and PIN: a session, and the page lists kim's job.
    ok = _login_form(client, method="card", card="cafe01", pin="482915")  # a card is read in capitals
    assert ok.status_code == 303 and ok.headers["location"] == "/release"
    session = ok.cookies["pl_session"].value
    page = client.simulate_get("/release", cookies={"pl_session": session})
    assert page.status_code == 200 and mine in page.text and "kim&#39;s held report" in page.text

    # Five wrong PINs for one card, then even the right one is throttled (429, Retry-After).
    codes = [_login_form(client, method="card", card="CAFE01", pin=f"11110{i}").status_code for i in range(5)]
    assert codes == [401] * 5
    throttled = _login_form(client, method="card", card="CAFE01", pin="482915")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    assert "too many failed attempts" in throttled.text and "pl_session" not in throttled.cookies
    # ... while a login and password still work (the card's failures have a key of their own).
    by_password = _login_form(client, method="password", login="kim", password="kim-password-1")
    assert by_password.status_code == 303


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
