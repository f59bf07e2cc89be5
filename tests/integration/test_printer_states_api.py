"""POST /Services/printer-states on both stores: the agent's token only, each bad field named
in a 4xx with nothing recorded, a change recorded once and shown in printer_errors."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import falcon.testing
import pytest
import sqlalchemy as sa

from api.app import create_app
from domain.units import to_micros
from projections.printer_errors import printer_errors

URL = "/Services/printer-states"


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def api(runtime):
    tokens = {role: runtime.issue_token(name=f"t-{role}", role=role, subject="")[1] for role in ("agent", "admin")}
    runtime.catch_up()  # tokens are checked against their read model
    return falcon.testing.TestClient(create_app(runtime)), tokens


def now_iso(minutes: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()


def printer(**fields):
    return {"printer": "hall-release", "state": "stopped", "reasons": ["paused"], "message": "toner low",
            "seen_at": now_iso(), **fields}


def head(runtime) -> int:
    return int(runtime.app.recorder.max_notification_id() or 0)


def test_only_the_agent_may_report_printer_states(runtime, api):
    client, tokens = api
    body = {"printers": [printer()]}
    assert client.simulate_post(URL, json=body).status_code == 401
    assert client.simulate_post(URL, json=body, headers=bearer("not-a-token")).status_code == 401
    assert client.simulate_post(URL, json=body, headers=bearer(tokens["admin"])).status_code == 403
    before = head(runtime)
    r = client.simulate_post(URL, json=body, headers=bearer(tokens["agent"]))
    assert r.status_code == 200, r.text
    assert r.json == {"results": [{"printer": "hall-release", "in_error": True, "recorded": True}]}
    assert head(runtime) > before


@pytest.mark.parametrize("body,field", [
    ({}, "printers"),
    ({"printers": []}, "printers"),
    ({"printers": "hall"}, "printers"),
    ({"printers": [printer() for _ in range(501)]}, "printers"),
    ({"printers": [printer(printer="")]}, "printers.0.printer"),
    ({"printers": [printer(printer="   ")]}, "printers.0.printer"),
    ({"printers": [printer(printer="x" * 256)]}, "printers.0.printer"),
    ({"printers": [printer(printer="hall\x00")]}, "printers.0.printer"),
    ({"printers": [printer(printer="hall\nrelease")]}, "printers.0.printer"),
    ({"printers": [printer(), printer(printer="lab", state="on fire")]}, "printers.1.state"),
    ({"printers": [printer(reasons=["paused", "not a keyword"])]}, "printers.0.reasons.1"),
    ({"printers": [printer(reasons=["r"] * 33)]}, "printers.0.reasons"),
    ({"printers": [printer(reasons=["x" * 65])]}, "printers.0.reasons.0"),
    ({"printers": [printer(message="m" * 1001)]}, "printers.0.message"),
    ({"printers": [printer(message="line one\nline two")]}, "printers.0.message"),
    ({"printers": [printer(message="bell\x07")]}, "printers.0.message"),
    ({"printers": [printer(seen_at="yesterday")]}, "printers.0.seen_at"),
    ({"printers": [printer(seen_at="2026-03-28T10:00:00")]}, "printers.0.seen_at"),  # no offset
    # A day ahead (the value is made when the tests are collected, which can be half an hour before it runs).
    ({"printers": [printer(seen_at=now_iso(minutes=24 * 60))]}, "printers.0.seen_at"),  # ahead of the server
    ({"printers": [printer(seen_at=now_iso(minutes=-31 * 24 * 60))]}, "printers.0.seen_at"),  # too old
    ({"printers": [printer(), printer(printer="HALL-release")]}, "printers.1.printer"),  # twice
    ({"printers": [printer(colour="red")]}, "printers.0.colour"),  # unknown field
])
def test_a_bad_report_is_refused_naming_the_field_and_records_nothing(runtime, api, body, field):
    client, tokens = api
    before = head(runtime)
    r = client.simulate_post(URL, json=body, headers=bearer(tokens["agent"]))
    assert r.status_code == 400, r.text
    assert field in r.json["errors"], r.json
    assert head(runtime) == before
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(printer_errors)).scalar_one() == 0


def test_only_changes_are_recorded_and_an_error_period_is_kept(runtime, api):
    client, tokens = api
    post = lambda *ps: client.simulate_post(URL, json={"printers": list(ps)}, headers=bearer(tokens["agent"]))  # noqa: E731
    started = now_iso(-3)
    r = post(printer(seen_at=started), printer(printer="lab", state="idle", reasons=["none"], message=""))
    assert [(x["printer"], x["in_error"], x["recorded"]) for x in r.json["results"]] == [
        ("hall-release", True, True), ("lab", False, False)]  # a healthy printer never in error: nothing
    before = head(runtime)
    assert post(printer(seen_at=now_iso(-2))).json["results"][0]["recorded"] is False  # the same again
    assert head(runtime) == before
    ended = now_iso(-1)
    assert post(printer(state="idle", reasons=["none"], message="", seen_at=ended)).json["results"][0] == {
        "printer": "hall-release", "in_error": False, "recorded": True}
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(printer_errors))]
    to_us = lambda text: to_micros(datetime.fromisoformat(text))  # noqa: E731
    assert rows == [("hall-release", to_us(started), to_us(ended), "paused", "toner low")]
