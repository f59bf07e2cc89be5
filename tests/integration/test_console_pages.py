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


def test_the_printers_page_shows_twenty_printers_a_page_and_a_refused_form_on_its_own_page(console, runtime):
    from commands.job_reports import parse_batch

    now = datetime.now(timezone.utc).isoformat()
    names = [f"q{i:02d}" for i in range(45)]
    runtime.track_jobs(parse_batch(msgspec.json.encode({"jobs": [
        {"job_key": f"k/{name}", "user": "uma", "printer": name, "client_host": "h", "document": "d.pdf",
         "submitted_at": now, "pages": 1, "copies": 1, "colour_pages": 0, "duplex": False, "paper": "A4", "size": 1,
         "pdl": "pdf"} for name in names]}), runtime.clock()))
    settled(runtime)
    cookie, csrf = login(console, "root", "root-pw-123")

    def shown(text: str) -> list[str]:
        return re.findall(r'<h2 id="printer-\d+">(q\d\d)</h2>', text)

    first = console.simulate_get("/printers", headers=cookie)
    assert shown(first.text) == names[:20] and "Page 1 of 3" in first.text and "Printers 1–20 of 45" in first.text
    assert len(first.content) < 150_000
    assert shown(console.simulate_get("/printers", params={"page": "3"}, headers=cookie).text) == names[40:]
    for bad, page in (("0", 1), ("abc", 1), ("99", 3), ("-2", 1), ("9" * 30, 1)):
        r = console.simulate_get("/printers", params={"page": bad}, headers=cookie)
        assert r.status_code == 200 and shown(r.text) == names[(page - 1) * 20:page * 20], bad
    r = console.simulate_post("/printers", headers={**cookie, **FORM},
                              body=f"csrf_token={csrf}&printer=q30&mono_page=-1&colour_page=0.2")
    assert r.status_code == 400 and shown(r.text) == names[20:40] and "prices cannot be negative" in r.text


def _states(runtime, user: str) -> list[str]:
    from projections.jobs import JobFilter, list_jobs

    with runtime.reader.connect() as conn:
        rows, _ = list_jobs(conn, JobFilter(user=user, limit=100))
    return sorted(r.status for r in rows)


def test_secure_print_lists_only_your_held_jobs_and_releases_and_deletes_them(console, runtime):
    from commands.printers import ReleaseSettings
    from tests.integration.test_release_commands import held

    for name in ("vault", "lobby"):
        runtime.set_secure_hold(name, True)
        runtime.set_release_settings(name, ReleaseSettings(group="g1"))
    for who in ("alice", "bob"):
        runtime.add_local_user(login=who, password=f"{who}-pw-12345", role="user", profile={})
    runtime.add_local_user(login="aud", password="aud-pw-12345", role="auditor", profile={})
    settled(runtime)
    [mine, spare], _ = held(runtime, 2, document="<script>alert(1)</script>")
    [theirs], _ = held(runtime, user="bob", printer="lobby", document="bob's secret")  # lobby: a known printer
    settled(runtime)

    alice, csrf = login(console, "alice", "alice-pw-12345")
    page = console.simulate_get("/secure-print", headers=alice)
    assert page.status_code == 200 and mine in page.text and spare in page.text
    assert theirs not in page.text and "secret" not in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert '<option value="lobby">lobby</option>' in page.text and 'href="/secure-print"' in page.text
    auditor, _ = login(console, "aud", "aud-pw-12345")
    assert console.simulate_get("/secure-print", headers=auditor).status_code == 403

    assert console.simulate_post("/secure-print", headers={**alice, **FORM},
                                 body=f"action=release&job={mine}").status_code == 403  # no CSRF token
    wrong = console.simulate_post("/secure-print", headers={**alice, **FORM},
                                  body=f"csrf_token={csrf}&action=release&job={theirs}")
    assert wrong.status_code == 400 and 'role="alert"' in wrong.text and "no held job of yours" in wrong.text
    outside = console.simulate_post("/secure-print", headers={**alice, **FORM},
                                    body=f"csrf_token={csrf}&action=release&job={mine}&printer=office")
    assert outside.status_code == 400 and "not a printer of the group" in outside.text
    done = console.simulate_post("/secure-print", headers={**alice, **FORM},
                                 body=f"csrf_token={csrf}&action=release&job={mine}&printer=lobby")
    assert done.status_code == 303 and done.headers["Location"] == "/secure-print?done=released"
    after = console.simulate_get("/secure-print", headers=alice, query_string="done=released")
    assert "Released" in after.text and mine not in after.text and spare in after.text
    done = console.simulate_post("/secure-print", headers={**alice, **FORM},
                                 body=f"csrf_token={csrf}&action=delete&job={spare}")
    assert done.status_code == 303 and done.headers["Location"] == "/secure-print?done=deleted"
    settled(runtime)
    assert _states(runtime, "alice") == ["deleted", "released"]

    admin, _ = login(console, "root", "root-pw-123")
    assert theirs in console.simulate_get("/secure-print", headers=admin).text  # an admin sees everyone's
    dashboard = console.simulate_get("/", headers=admin).text
    assert re.search(r'<a href="/secure-print">1<span', dashboard)


def test_reports_list_the_catalogue_run_with_filters_and_escape_names(console, runtime):
    runtime.add_local_user(login="uma", password="uma-pw-12345", role="user", profile={})
    settled(runtime)
    post_job(runtime, "uma", "<script>x</script>")
    post_job(runtime, "uma", "b.pdf")
    post_job(runtime, "vic", "c.pdf")
    admin, _ = login(console, "root", "root-pw-123")
    catalogue = console.simulate_get("/reports", headers=admin)
    assert catalogue.status_code == 200 and 'href="/reports/usage"' in catalogue.text
    assert 'href="/reports/printer-list"' in catalogue.text

    usage = console.simulate_get("/reports/usage", headers=admin, query_string="group_by=user")
    assert usage.status_code == 200 and '<div class="report-body">' in usage.text
    totals = re.search(r'<tr class="total">(.*?)</tr>', usage.text, re.S).group(1)
    assert "<td>6</td>" in totals  # 3 jobs of 2 pages: 6 impressions
    assert 'href="/api/v1/reports/usage?group_by=user&amp;format=csv"' in usage.text
    assert 'src="data:image/png;base64,' in usage.text  # the server-rendered chart
    csv_text = console.simulate_get("/api/v1/reports/usage", headers=admin,
                                    query_string="group_by=user&format=csv").text
    assert "uma" in csv_text and "vic" in csv_text

    largest = console.simulate_get("/reports/largest-jobs", headers=admin)
    assert "<script>x" not in largest.text and "&lt;script&gt;x&lt;/script&gt;" in largest.text
    bad = console.simulate_get("/reports/usage", headers=admin, query_string="from=yesterday-ish")
    assert bad.status_code == 400 and 'role="alert"' in bad.text and "from" in bad.text

    user, _ = login(console, "uma", "uma-pw-12345")
    listed = console.simulate_get("/reports", headers=user).text
    assert 'href="/reports/usage"' in listed and "/reports/printer-list" not in listed
    assert console.simulate_get("/reports/printer-list", headers=user).status_code == 403
    own = console.simulate_get("/reports/usage", headers=user, query_string="group_by=user&user=vic")
    assert own.status_code == 200 and "vic" not in own.text.split('<div class="report-body">')[1]
    assert "<td>4</td>" in re.search(r'<tr class="total">(.*?)</tr>', own.text, re.S).group(1)
    assert console.simulate_get("/reports/nope", headers=user).status_code == 404


def test_audit_shows_the_event_history_paged_and_the_admin_changes(console, runtime):
    runtime.add_local_user(login="aud", password="aud-pw-12345", role="auditor", profile={})
    settled(runtime)
    for n in range(3):
        post_job(runtime, "uma", f"doc{n}.pdf")
    admin, csrf = login(console, "root", "root-pw-123")
    assert console.simulate_post("/printers", headers={**admin, **FORM},
                                 body=f"csrf_token={csrf}&printer=office&mono_page=0.05&colour_page=0.25"
                                 ).status_code == 303
    auditor, _ = login(console, "aud", "aud-pw-12345")
    page = console.simulate_get("/audit", headers=auditor)
    assert page.status_code == 200 and "Admin changes" in page.text and "Event history" in page.text
    changes = page.text.split('id="changes-title"')[1].split('id="events-title"')[0]
    assert "office" in changes and "root" in changes and "→" in changes

    tracked = console.simulate_get("/audit", headers=auditor, query_string="type=PrintJob.Tracked")
    assert tracked.status_code == 200 and tracked.text.count("<td>PrintJob.Tracked</td>") == 3
    assert "doc0.pdf" in tracked.text and "User.Registered" not in tracked.text.split('id="events-title"')[1]
    positions = [int(p) for p in re.findall(r'<td class="num">(\d+)</td>', tracked.text)]
    assert positions == sorted(positions)
    bad = console.simulate_get("/audit", headers=auditor, query_string="type=No.Such")
    assert bad.status_code == 400 and "unknown event type" in bad.text
    assert console.simulate_get("/audit", headers=admin).status_code == 200


def test_a_queues_release_settings_and_card_reader_are_set_from_the_page_as_the_api_would(console, runtime):
    post_job(runtime, "uma", "a.pdf")
    cookie, csrf = login(console, "root", "root-pw-123")
    form = f"csrf_token={csrf}&printer=office&change=release"
    r = console.simulate_post("/printers", headers={**cookie, **FORM},
                              body=f"{form}&hold_seconds=0&code_mode=generated&code_length=6&group=floor-2")
    api = console.simulate_put("/api/v1/printers/office/release", headers={**cookie, "X-CSRF-Token": csrf},
                               json={"hold_seconds": 0})
    assert r.status_code == 400 and api.status_code == 400
    # The page says what the API says, beside the field, and keeps what was entered.
    said = api.json["errors"]["hold_seconds"][0]
    assert f'<span class="field-error" id="p1-hold-error">{said}</span>' in r.text
    assert 'aria-invalid="true" aria-describedby="p1-hold-error"' in r.text and 'value="floor-2"' in r.text
    r = console.simulate_post("/printers", headers={**cookie, **FORM},
                              body=f"{form}&hold_seconds=soon&code_mode=generated&code_length=6&group=x")
    assert r.status_code == 400 and "Not a valid integer." in r.text
    r = console.simulate_post("/printers", headers={**cookie, **FORM},
                              body=f"{form}&hold_seconds=7200&code_mode=generated&code_length=8&group=%3Cb%3Efloor")
    assert r.status_code == 303
    p = runtime.app.repository.get(runtime.printers.for_names(["office"])[0]["office"].id)
    assert (p.hold_seconds, p.code_mode, p.code_length, p.group) == (7200, "generated", 8, "<b>floor")
    page = console.simulate_get("/printers", headers=cookie).text
    assert "&lt;b&gt;floor" in page and "<b>floor" not in page

    reader = f"csrf_token={csrf}&printer=office&change=reader"
    r = console.simulate_post("/printers", headers={**cookie, **FORM},
                              body=f"{reader}&reader_host=10.0.0.5&reader_port=99999&reader_format=hex")
    assert r.status_code == 400 and "p1-port-error" in r.text
    r = console.simulate_post("/printers", headers={**cookie, **FORM},
                              body=f"{reader}&reader_host=10.0.0.5&reader_port=4001&reader_format=hex")
    assert r.status_code == 303
    p = runtime.app.repository.get(p.id)
    assert (p.card_reader["host"], p.card_reader["port"], p.card_reader["format"]) == ("10.0.0.5", 4001, "hex")
    r = console.simulate_post("/printers", headers={**cookie, **FORM}, body=f"{reader}&reader_host=&reader_port=")
    assert r.status_code == 303 and runtime.app.repository.get(p.id).card_reader == {}


def test_the_cost_schedule_history_shows_each_version_with_its_prices(console, runtime):
    post_job(runtime, "uma", "a.pdf")
    cookie, csrf = login(console, "root", "root-pw-123")
    for mono in ("0.05", "0.07"):
        assert console.simulate_post("/printers", headers={**cookie, **FORM},
                                     body=f"csrf_token={csrf}&printer=office&change=prices&mono_page={mono}"
                                          f"&colour_page=0.25").status_code == 303
    page = console.simulate_get("/printers", headers=cookie).text
    history = page.split("<summary>Cost schedule history")[1].split("</details>")[0]
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td><td class="num">([^<]+)</td>', history)
    assert [(v, mono) for v, _, mono in rows] == [("3", "0.0700"), ("2", "0.0500"), ("1", rows[-1][2])]
