"""Users → Sync with the directory, in-process on both stores against a real slapd: the sync
runs in the background (a thread of the server without Redis), its progress is polled from
GET /api/v1/users/syncs/{id}, and its page then shows what it did; an unreachable directory
fails the run with the reason and changes nothing; only admins may start one."""
from __future__ import annotations

import re
import time

import pytest

from adapters.directory import LdapConfig
from tests.integration.test_console_pages import FORM, console, login, settled  # noqa: F401 - fixtures

pytestmark = pytest.mark.ldap


def use_directory(runtime, port: int) -> None:
    from slapd_harness import CONTRACTORS, SERVICE_DN, SERVICE_PASSWORD, STAFF

    runtime.directory_config.save("ldap", LdapConfig(host="127.0.0.1", port=port, base_dns=(STAFF, CONTRACTORS),
                                                     bind_dn=SERVICE_DN, bind_password=SERVICE_PASSWORD))


def finished(console, cookie, run_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = console.simulate_get(f"/api/v1/users/syncs/{run_id}", headers=cookie).json
        assert state["state"] in ("queued", "running", "done", "failed"), state
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError("the sync did not finish in 60 s")


def test_a_sync_started_on_the_users_page_runs_in_the_background_and_shows_what_it_did(console, runtime, slapd):
    from slapd_harness import USERS

    cookie, csrf = login(console, "root", "root-pw-123")  # a local admin: logged in before the source changes
    use_directory(runtime, slapd.port)
    users = console.simulate_get("/users", headers=cookie).text
    assert 'action="/directory-sync"' in users and "Sync now" in users
    r = console.simulate_post("/directory-sync", headers={**cookie, **FORM}, body=f"csrf_token={csrf}")
    assert r.status_code == 303
    run_id = re.fullmatch(r"/directory-sync/([0-9a-f]{32})", r.headers["location"]).group(1)
    state = finished(console, cookie, run_id)
    assert state["state"] == "done" and state["progress"] == 1.0, state
    imported = state["result"]["imported"]
    assert sorted(imported) == sorted(USERS) and state["result"]["counts"]["imported"] == len(USERS)
    page = console.simulate_get(f"/directory-sync/{run_id}", headers=cookie).text
    assert f"{len(USERS)} imported" in page and "progress.js" not in page  # done: no polling
    assert all(login_ in page for login_ in ("alice", "bob"))
    settled(runtime)
    listed = console.simulate_get("/api/v1/users", headers=cookie).json
    assert {u["login"] for u in listed["users"]} >= set(USERS)

    # A second sync changes nothing and says so.
    again = console.simulate_post("/api/v1/users/syncs", headers={**cookie, "X-CSRF-Token": csrf})
    assert again.status_code == 202, again.text
    state = finished(console, cookie, again.json["id"])
    assert state["result"]["counts"]["imported"] == 0 and state["result"]["counts"]["updated"] == 0


def test_the_sync_reports_its_progress_in_order(runtime, slapd):
    runtime.licensing.install_trial()
    use_directory(runtime, slapd.port)
    heard: list[tuple[float, str]] = []
    report = runtime.sync_users(progress=lambda fraction, phase: heard.append((fraction, phase)))
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 0.95
    assert heard[1][1] == f"{len(report.imported)} users read from the directory"
    assert any(phase == f"1 of {len(report.imported)} users saved" for _, phase in heard)


def test_an_unreachable_directory_fails_the_run_with_the_reason_and_changes_nothing(console, runtime, slapd):
    cookie, csrf = login(console, "root", "root-pw-123")
    use_directory(runtime, slapd.port)
    slapd.stop()
    head = runtime.app.recorder.max_notification_id()
    r = console.simulate_post("/directory-sync", headers={**cookie, **FORM}, body=f"csrf_token={csrf}")
    run_id = r.headers["location"].rsplit("/", 1)[1]
    state = finished(console, cookie, run_id)
    assert state["state"] == "failed" and "cannot reach 127.0.0.1" in state["error"], state
    assert runtime.app.recorder.max_notification_id() == head
    page = console.simulate_get(f"/directory-sync/{run_id}", headers=cookie).text
    assert "The sync could not finish" in page


def test_only_an_admin_starts_a_sync_and_sees_one(console, runtime):
    runtime.add_local_user(login="una", password="una-pw-12345", role="user", profile={})
    settled(runtime)
    cookie, csrf = login(console, "una", "una-pw-12345")
    r = console.simulate_post("/directory-sync", headers={**cookie, **FORM}, body=f"csrf_token={csrf}")
    assert r.status_code in (403, 404), r.status_code
    assert console.simulate_post("/api/v1/users/syncs", headers={**cookie, "X-CSRF-Token": csrf}).status_code == 403
    admin, _ = login(console, "root", "root-pw-123")
    assert console.simulate_get(f"/directory-sync/{'0' * 32}", headers=admin).status_code == 404
    assert console.simulate_get(f"/api/v1/users/syncs/{'0' * 32}", headers=admin).status_code == 404
