"""Audit → Verify from the console, in-process on both stores: the page starts `audit verify`
(the code of `pageledger audit verify`) as background work, follows its progress through the
API's state, and shows the result of each check; a tampered event and a read-model row changed
behind the projection are named on the page. Users may not run it."""
from __future__ import annotations

import re
import time

import sqlalchemy as sa

from projections.jobs import jobs
from tests.integration.test_audit import a_job_event, id_column, raw_sql, track
from tests.integration.test_console_pages import FORM, console, login, post_job, settled  # noqa: F401 - fixtures


def verify_from_the_page(console, cookie, csrf) -> str:
    r = console.simulate_post("/audit/verify", headers={**cookie, **FORM}, body=f"csrf_token={csrf}")
    assert r.status_code == 303, r.text
    run_page = r.headers["Location"]
    run_id = re.fullmatch(r"/audit/verify/([0-9a-f]{32})", run_page).group(1)
    seen = []
    deadline = time.monotonic() + 120
    while True:
        state = console.simulate_get(f"/api/v1/audit/verifications/{run_id}", headers=cookie).json
        seen.append(state["state"])
        if state["state"] in ("done", "failed"):
            break
        page = console.simulate_get(run_page, headers=cookie).text
        # The run may finish between the two requests: then the page shows the result, not progress.
        if console.simulate_get(f"/api/v1/audit/verifications/{run_id}", headers=cookie).json["state"] in (
                "queued", "running"):
            assert 'data-poll="/api/v1/audit/verifications/' in page and "/static/progress.js" in page
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)
    assert state["state"] == "done", state
    assert state["progress"] == 1.0
    page = console.simulate_get(run_page, headers=cookie)
    assert page.status_code == 200 and "progress.js" not in page.text
    return page.text


def test_verify_from_the_audit_page_shows_each_check_then_names_tampering(console, runtime):
    runtime.add_local_user(login="aud", password="aud-pw-12345", role="auditor", profile={})
    runtime.add_local_user(login="uma", password="uma-pw-12345", role="user", profile={})
    settled(runtime)
    track(runtime, 30, key_prefix="a")
    settled(runtime)
    auditor, csrf = login(console, "aud", "aud-pw-12345")
    audit_page = console.simulate_get("/audit", headers=auditor).text
    assert 'action="/audit/verify"' in audit_page

    text = verify_from_the_page(console, auditor, csrf)
    assert "All verified" in text and "Event log seals</td><td class=\"result\">verified" in text
    checks = dict(re.findall(r'<tr class="check"><td>Read model ([a-z_]+)</td><td class="result">([^<]+)</td>', text))
    expected = {c.name for c in runtime.audit.verify().read_models.checks}
    assert set(checks) == expected and set(checks.values()) == {"verified"}, checks
    assert "jobs" in checks

    # A read-model row changed behind the projection, and an event edited in the store: both named.
    with runtime.writer.begin() as conn:
        seq = conn.execute(sa.select(sa.func.min(jobs.c.seq))).scalar()
        conn.execute(jobs.update().where(jobs.c.seq == seq).values(cost=1))
    nid, _, _, _, state = a_job_event(runtime)
    edited = bytes(state).replace(b"\x01", b"\x02", 1) if b"\x01" in bytes(state) else bytes(state) + b"\x00"
    raw_sql(runtime, "UPDATE {events} SET state = ? WHERE " + id_column(runtime) + " = ?", (edited, nid))
    text = verify_from_the_page(console, auditor, csrf)
    assert "NOT verified" in text and 'class="result">TAMPERED' in text and f"edited: " in text
    assert re.search(r'Read model jobs</td><td class="result">1 differences', text), text[-3000:]

    # Without the token nothing starts; a user may neither start nor read one.
    assert console.simulate_post("/audit/verify", headers={**auditor, **FORM}, body="").status_code == 403
    user, user_csrf = login(console, "uma", "uma-pw-12345")
    assert console.simulate_post("/audit/verify", headers={**user, **FORM},
                                 body=f"csrf_token={user_csrf}").status_code == 403
    run_id = re.search(r'/api/v1/audit/verifications/([0-9a-f]{32})', console.simulate_post(
        "/api/v1/audit/verifications", headers={**auditor, "X-CSRF-Token": csrf}).headers["Location"]).group(1)
    assert console.simulate_get(f"/audit/verify/{run_id}", headers=user).status_code == 403
    assert console.simulate_get(f"/api/v1/audit/verifications/{run_id}", headers=user).status_code == 403
    assert console.simulate_get("/audit/verify/" + "0" * 32, headers=auditor).status_code == 404
