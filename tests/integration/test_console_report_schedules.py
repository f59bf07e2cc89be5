"""Reports in the console, in-process on both stores: the "schedule it" form (the handler of PUT
/api/v1/report-schedules/{name}: a bad cron or recipient is refused beside its field and nothing
is recorded), the list of schedules, and a long report run in the background with its progress
page (POST /api/v1/reports/{name}/runs's code, polled through /api/v1/report-runs/{id})."""
from __future__ import annotations

import csv
import io
import re
import time
from urllib.parse import quote

from tests.integration.test_console_pages import FORM, console, login, post_job, settled  # noqa: F401 - fixtures


def form_body(csrf: str, **fields: str) -> str:
    return "&".join(f"{k}={quote(v)}" for k, v in {"csrf_token": csrf, **fields}.items())


def test_an_admin_schedules_a_report_from_the_page_and_bad_cron_or_recipients_are_refused_beside_them(console, runtime):
    runtime.add_local_user(login="aud", password="aud-pw-12345", role="auditor", profile={})
    settled(runtime)
    admin, csrf = login(console, "root", "root-pw-123")
    report = console.simulate_get("/reports/usage", headers=admin, query_string="printer=office").text
    link = re.search(r'href="(/report-schedules\?[^"]+)">Schedule this report', report).group(1)
    assert "report=usage" in link and "printer=office" in link
    prefilled = console.simulate_get(link.split("?")[0], headers=admin, query_string=link.split("?")[1].replace("&amp;", "&"))
    assert prefilled.status_code == 200
    assert re.search(r'<option value="usage" selected>', prefilled.text)
    assert 'id="sched-printer" name="printer" value="office"' in prefilled.text

    head = runtime.app.recorder.max_notification_id()
    bad = console.simulate_post("/report-schedules", headers={**admin, **FORM}, body=form_body(
        csrf, action="define", name="weekly usage", report="usage", format="pdf", cron="61 7 * * 1",
        period="previous-week", recipients="boss@example.com, <script>x", printer="office"))
    assert bad.status_code == 400
    assert re.search(r'id="sched-cron-error">[^<]*minute', bad.text), bad.text[-4000:]
    assert re.search(r'id="sched-recipients-error">&lt;script&gt;x: ', bad.text)
    assert "<script>x" not in bad.text
    assert 'value="61 7 * * 1"' in bad.text and 'value="boss@example.com, &lt;script&gt;x"' in bad.text  # kept
    assert runtime.app.recorder.max_notification_id() == head  # nothing recorded
    assert console.simulate_get("/api/v1/report-schedules", headers=admin).json["schedules"] == [] or all(
        s["name"] != "weekly usage" for s in console.simulate_get("/api/v1/report-schedules", headers=admin).json["schedules"])
    no_recipient = console.simulate_post("/report-schedules", headers={**admin, **FORM}, body=form_body(
        csrf, action="define", name="weekly usage", report="usage", format="pdf", cron="0 7 * * 1",
        period="previous-week", recipients=""))
    assert no_recipient.status_code == 400 and 'id="sched-recipients-error"' in no_recipient.text

    ok = console.simulate_post("/report-schedules", headers={**admin, **FORM}, body=form_body(
        csrf, action="define", name="weekly usage", report="usage", format="csv", cron="0 7 * * 1",
        period="previous-week", recipients="boss@example.com; it@example.com", printer="office"))
    assert ok.status_code == 303 and ok.headers["Location"] == "/report-schedules?done=saved"
    listed = console.simulate_get("/report-schedules", headers=admin, query_string="done=saved").text
    assert "Schedule saved." in listed and "weekly usage" in listed and "boss@example.com, it@example.com" in listed
    [api] = [s for s in console.simulate_get("/api/v1/report-schedules", headers=admin).json["schedules"]
             if s["name"] == "weekly usage"]
    assert (api["report"], api["format"], api["cron"], api["period"], api["recipients"], api["parameters"],
            api["defined_by"]) == ("usage", "csv", "0 7 * * 1", "previous-week",
                                   ["boss@example.com", "it@example.com"], {"printer": "office"}, "root")

    auditor, aud_csrf = login(console, "aud", "aud-pw-12345")
    seen = console.simulate_get("/report-schedules", headers=auditor).text
    assert "weekly usage" in seen and "Schedule a report" not in seen
    assert console.simulate_post("/report-schedules", headers={**auditor, **FORM}, body=form_body(
        aud_csrf, action="remove", name="weekly usage")).status_code == 403
    assert console.simulate_post("/report-schedules", headers={**admin, **FORM}, body=form_body(
        "wrong", action="remove", name="weekly usage")).status_code == 403
    gone = console.simulate_post("/report-schedules", headers={**admin, **FORM}, body=form_body(
        csrf, action="remove", name="weekly usage"))
    assert gone.status_code == 303
    assert all(s["name"] != "weekly usage"
               for s in console.simulate_get("/api/v1/report-schedules", headers=admin).json["schedules"])


def test_a_long_report_runs_in_the_background_with_its_progress_and_only_its_owner_sees_it(console, runtime):
    runtime.add_local_user(login="uma", password="uma-pw-12345", role="user", profile={})
    runtime.add_local_user(login="vic", password="vic-pw-12345", role="user", profile={})
    settled(runtime)
    for i in range(3):
        post_job(runtime, "uma", f"uma {i}.pdf")
    post_job(runtime, "vic", "vic's.pdf")
    uma, csrf = login(console, "uma", "uma-pw-12345")
    page = console.simulate_get("/reports/jobs", headers=uma).text
    assert 'action="/reports/jobs/runs"' in page
    r = console.simulate_post("/reports/jobs/runs", headers={**uma, **FORM}, body=form_body(csrf, format="csv"))
    assert r.status_code == 303, r.text
    run_id = re.fullmatch(r"/report-runs/([0-9a-f]{32})", r.headers["Location"]).group(1)
    deadline = time.monotonic() + 60
    while (state := console.simulate_get(f"/api/v1/report-runs/{run_id}", headers=uma).json)["state"] not in (
            "done", "failed"):
        running = console.simulate_get(f"/report-runs/{run_id}", headers=uma).text
        assert "<progress" in running and f'data-poll="/api/v1/report-runs/{run_id}"' in running
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["state"] == "done" and state["rows_total"] == 3 and state["rows_done"] == 3
    done = console.simulate_get(f"/report-runs/{run_id}", headers=uma).text
    assert f'href="/api/v1/report-runs/{run_id}/file"' in done and "<progress" not in done
    rows = list(csv.reader(io.StringIO(console.simulate_get(f"/api/v1/report-runs/{run_id}/file", headers=uma).text)))
    assert sorted(r for row in rows for r in row if r.startswith("uma ")) == ["uma 0.pdf", "uma 1.pdf", "uma 2.pdf"]
    assert not any("vic" in c for row in rows for c in row)

    vic, _ = login(console, "vic", "vic-pw-12345")
    assert console.simulate_get(f"/report-runs/{run_id}", headers=vic).status_code == 404
    bad = console.simulate_post("/reports/jobs/runs", headers={**uma, **FORM}, body=form_body(csrf, format="exe"))
    assert bad.status_code == 400 and "format" in bad.text
    assert console.simulate_post("/reports/jobs/runs", headers={**uma, **FORM}, body="format=csv").status_code == 403
