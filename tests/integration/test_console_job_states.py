"""The console's job page and Job Accounting's state filter, in-process on both stores: each
job's full event history (the query of GET /api/v1/jobs/{job}/history) and its real state as
the read models hold it (tracked, denied, held, released, printed, release failed, expired,
deleted); a user never opens another user's job page."""
from __future__ import annotations

import re
from uuid import UUID

from commands.release import Caller, ExpireJobs
from tests.integration.test_console_pages import console, login, post_job, settled  # noqa: F401 - fixtures


def _number(console, cookie, **query) -> list[str]:
    page = console.simulate_get("/jobs", headers=cookie, query_string="&".join(f"{k}={v}" for k, v in query.items()))
    assert page.status_code == 200, page.text[-2000:]
    return re.findall(r'href="/jobs/(\d+)"', page.text)


def test_the_job_page_shows_each_state_and_the_full_history_and_the_filter_offers_every_state(console, runtime):
    from tests.integration.test_release_commands import held

    runtime.set_secure_hold("vault", True)
    runtime.add_local_user(login="alice", password="alice-pw-12345", role="user", profile={})
    runtime.add_local_user(login="bob", password="bob-pw-12345", role="user", profile={})
    settled(runtime)
    post_job(runtime, "alice", "plain <b>letter</b>.pdf")
    ids, _ = held(runtime, 5, document="secret plan.pdf")
    alice = Caller("alice", admin=False, address="10.0.0.1")
    released, printed, failed, deleted, expired = (UUID(i) for i in ids)
    runtime.release_jobs([str(released), str(printed), str(failed)], alice)
    runtime.release_outcome.printed(printed, cups_job="vault-7")
    runtime.release_outcome.failed(failed, why="paper jam <tray 2>", held=False)
    runtime.delete_jobs([str(deleted)], alice)
    ExpireJobs(runtime.app, runtime.spool_remover, lambda: runtime.clock() + 400 * 86_400_000_000)([str(expired)])
    settled(runtime)

    admin, _ = login(console, "root", "root-pw-123")
    page = console.simulate_get("/jobs", headers=admin)
    for label in ("tracked", "denied", "held", "released", "printed", "release failed", "expired", "deleted"):
        assert f">{label}</option>" in page.text, label
    by_state = {}
    for state in ("tracked", "released", "printed", "failed", "deleted", "expired", "held", "denied"):
        by_state[state] = _number(console, admin, state=state)
    assert len(by_state["tracked"]) == 1 and by_state["held"] == [] and by_state["denied"] == []
    for state in ("released", "printed", "failed", "deleted", "expired"):
        assert len(by_state[state]) == 1, (state, by_state)
    bad = console.simulate_get("/jobs", headers=admin, query_string="state=lost")
    assert bad.status_code == 400 and "state" in bad.text

    printed_page = console.simulate_get(f"/jobs/{by_state['printed'][0]}", headers=admin).text
    assert re.search(r'<dd class="state">printed</dd>', printed_page)
    for event in ("PrintJob.Secured", "PrintJob.Released", "PrintJob.Printed"):
        assert event in printed_page, event
    assert "Released to</dt><dd>vault" in printed_page
    failed_page = console.simulate_get(f"/jobs/{by_state['failed'][0]}", headers=admin).text
    assert '<dd class="state">release failed</dd>' in failed_page and "PrintJob.ReleaseFailed" in failed_page
    assert "paper jam &lt;tray 2&gt;" in failed_page and "<tray 2>" not in failed_page
    for state, event in (("deleted", "PrintJob.Deleted"), ("expired", "PrintJob.Expired")):
        text = console.simulate_get(f"/jobs/{by_state[state][0]}", headers=admin).text
        assert f'<dd class="state">{state}</dd>' in text and event in text and "not charged" in text
    tracked = console.simulate_get(f"/jobs/{by_state['tracked'][0]}", headers=admin).text
    assert '<dd class="state">tracked</dd>' in tracked and "PrintJob.Tracked" in tracked
    assert "plain &lt;b&gt;letter&lt;/b&gt;.pdf" in tracked and "<b>letter" not in tracked

    # The page's history is the API's: the same events in the same order.
    api = console.simulate_get(f"/api/v1/jobs/{by_state['printed'][0]}/history", headers=admin).json
    positions = [str(e["position"]) for e in api["events"]]
    assert positions == re.findall(r'<tr><td class="num">(\d+)</td>', printed_page)

    # alice sees her own job's page; bob gets 404 for it, as for a job that does not exist.
    mine, _ = login(console, "alice", "alice-pw-12345")
    own = console.simulate_get(f"/jobs/{by_state['printed'][0]}", headers=mine)
    assert own.status_code == 200 and "PrintJob.Printed" in own.text and 'href="/my/jobs"' in own.text
    bob, _ = login(console, "bob", "bob-pw-12345")
    for number in (by_state["printed"][0], by_state["tracked"][0], "999999"):
        r = console.simulate_get(f"/jobs/{number}", headers=bob)
        assert r.status_code == 404 and "secret plan" not in r.text and "letter" not in r.text
        assert console.simulate_get(f"/api/v1/jobs/{number}/history", headers=bob).status_code == 404
    # bob's own listing filtered by a state is bound to him
    assert "secret plan" not in console.simulate_get("/my/jobs", headers=bob, query_string="state=printed").text
