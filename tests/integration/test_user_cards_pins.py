"""An admin sets a user's card number and resets their PIN, on SQLite and PostgreSQL: through the
commands, over the API and from the console's Users page; the card then releases its holder's
jobs at a reader, the PIN is the release code of a "predefined" queue, and a directory sync keeps
what the admin set when the directory gives that user none."""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import re

import falcon.testing
import pytest

from adapters.directory import AttributeMap, LdapConfig
from api.app import create_app
from api.console.forms import caught_up
from commands.job_reports import parse_batch
from commands.jobs import TrackJobs
from commands.printers import ReleaseSettings
from commands.release import Caller
from commands.setup import SetupRequest
from commands.users import CardTaken, NoSuchUser, PinTaken
from commands.validation import InvalidRequest
from domain.users import LOCAL_SOURCE
from tools.sample_jobs import sample_jobs

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_keys = itertools.count()


def local_user(runtime, login):
    runtime.add_local_user(login=login, password=f"{login}-password-1", role="user", profile={})
    return runtime.app.user_id(LOCAL_SOURCE, login)


def held(runtime, user, printer="vault"):
    """One job of `user` held on the secure queue `printer`, with its data: its id."""
    job = dict(next(iter(sample_jobs(1))), job_key=f"cards/{next(_keys)}", user=user, printer=printer, pages=1,
               copies=1, colour_pages=0, duplex=False, paper="A4")
    track = TrackJobs(runtime.app, runtime.printers, codes=runtime.pin_digest, clock=runtime.clock)
    [outcome] = track(parse_batch(json.dumps({"jobs": [job]}).encode()))
    body = b"%PDF-1.7 " + outcome.job_key.encode()
    runtime.hold_job(outcome.job_id, io.BytesIO(body), sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    runtime.catch_up()
    return str(outcome.job_id)


def stored_events(runtime) -> list:
    return list(runtime.app.recorder.select_notifications(start=1, limit=100_000))


def test_a_card_set_by_an_admin_releases_its_holders_jobs_and_is_nobody_elses(runtime):
    kim, lee = local_user(runtime, "kim"), local_user(runtime, "lee")
    runtime.set_secure_hold("vault", True)
    runtime.catch_up()

    assert runtime.set_card(kim, " 0A1B ", by="root") is True
    assert runtime.set_card(kim, "0A1B", by="root") is False  # already theirs: nothing recorded
    runtime.catch_up()
    assert runtime.card_holder("0A1B") == "kim"
    job = held(runtime, "kim")
    outcome = runtime.swipe_card("vault", "0A1B")
    assert (outcome.outcome, list(outcome.jobs)) == ("released", [job])
    last = runtime.app.repository.get(kim)
    assert (last.card, last.card_by) == ("0A1B", "root")

    # Another user's card, bad values, an unknown user: refused, nothing written.
    head = runtime.app.recorder.max_notification_id()
    with pytest.raises(CardTaken, match="card 0A1B is held by kim"):
        runtime.set_card(lee, "0A1B", by="root")
    for bad in ("12 34", "1234\n", "12\x0034", "x" * 65, "١٢٣"):
        with pytest.raises(InvalidRequest) as refused:
            runtime.set_card(lee, bad, by="root")
        assert list(refused.value.errors) == ["card"]
    with pytest.raises(NoSuchUser):
        runtime.set_card(runtime.app.user_id(LOCAL_SOURCE, "nobody"), "99", by="root")
    assert runtime.app.recorder.max_notification_id() == head

    # Cleared, the card is free: the next holder's swipe is theirs.
    assert runtime.set_card(kim, "", by="root")
    runtime.catch_up()
    assert runtime.card_holder("0A1B") is None
    runtime.set_card(lee, "0A1B", by="root")
    runtime.catch_up()
    assert runtime.card_holder("0A1B") == "lee"


def test_a_pin_reset_is_the_release_code_of_a_predefined_queue_and_never_kept_in_clear(runtime, caplog):
    caplog.set_level(logging.DEBUG)
    kim, lee = local_user(runtime, "kim"), local_user(runtime, "lee")
    runtime.set_secure_hold("vault", True)
    runtime.set_release_settings("vault", ReleaseSettings(code_mode="predefined"))
    runtime.catch_up()
    caller = Caller("kim", admin=False, address="10.0.0.7")

    assert runtime.reset_pin(kim, "24680", by="root").generated == ""
    runtime.catch_up()
    job = held(runtime, "kim")
    with pytest.raises(InvalidRequest):
        runtime.release_jobs([job], caller, code="13579")
    runtime.release_jobs([job], caller, code="24680")  # one reset covers the PIN and the release code

    reset = runtime.reset_pin(kim, None, by="root")  # generated, told once
    assert len(reset.generated) == 6 and reset.generated.isdigit() and reset.login == "kim"
    assert reset.generated not in repr(reset)
    runtime.catch_up()
    job = held(runtime, "kim")
    runtime.release_jobs([job], caller, code=reset.generated)
    user = runtime.app.repository.get(kim)
    assert (user.pin_digest, user.pin_by) == (runtime.pin_digest(reset.generated), "root")
    for pin in ("24680", reset.generated):
        assert not any(pin.encode() in n.state for n in stored_events(runtime))
        assert pin not in caplog.text

    head = runtime.app.recorder.max_notification_id()
    for bad in ("123", "1234567890123", "12a4", "12 34", "١٢٣٤", ""):
        with pytest.raises(InvalidRequest) as refused:
            runtime.reset_pin(lee, bad, by="root")
        assert list(refused.value.errors) == ["pin"]
    with pytest.raises(PinTaken):
        runtime.reset_pin(lee, reset.generated, by="root")  # kim's
    with pytest.raises(NoSuchUser):
        runtime.reset_pin(runtime.app.user_id(LOCAL_SOURCE, "nobody"), None, by="root")
    assert runtime.app.recorder.max_notification_id() == head


# --- over HTTP: the API and the console's Users page ------------------------------------------

@pytest.fixture
def console(runtime):
    runtime.licensing.install_trial()
    runtime.complete_setup(SetupRequest(network_type="local", ldap=None, licence_mode="trial", key="", company="",
                                        licence_file="", admin_login="root", admin_password="root-pw-123"))
    local_user(runtime, "kim")
    local_user(runtime, "lee")
    runtime.catch_up()
    runtime.start_projections()
    return falcon.testing.TestClient(create_app(runtime))


def settled(runtime) -> None:
    assert caught_up(runtime.progress, tuple(runtime.progress.positions()), seconds=20)


def login(client, user: str, password: str) -> dict:
    r = client.simulate_post("/Authentication/Login", json={"login": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Cookie": f"pl_session={r.cookies['pl_session'].value}", "X-CSRF-Token": r.json["csrf_token"]}


def test_the_api_sets_cards_and_resets_pins_for_admins_only(console, runtime):
    root = login(console, "root", "root-pw-123")
    kim, lee = str(runtime.app.user_id(LOCAL_SOURCE, "kim")), str(runtime.app.user_id(LOCAL_SOURCE, "lee"))
    card, pin = f"/api/v1/users/{kim}/card", f"/api/v1/users/{kim}/pin"

    assert console.simulate_put(card, json={"card": "7001"}).status_code == 401
    user = login(console, "kim", "kim-password-1")
    assert console.simulate_put(card, json={"card": "7001"}, headers=user).status_code == 403
    assert console.simulate_put(pin, json={}, headers=user).status_code == 403

    r = console.simulate_put(card, json={"card": "7001"}, headers=root)
    assert r.status_code == 200 and r.json == {"id": kim, "card": "7001", "changed": True}
    settled(runtime)
    assert runtime.card_holder("7001") == "kim"
    r = console.simulate_put(f"/api/v1/users/{lee}/card", json={"card": "7001"}, headers=root)
    assert r.status_code == 409 and list(r.json["errors"]) == ["card"] and "kim" in r.json["errors"]["card"][0]
    r = console.simulate_put(card, json={"card": "70\n01"}, headers=root)
    assert r.status_code == 400 and list(r.json["errors"]) == ["card"]
    missing = console.simulate_put(card, json={}, headers=root)
    assert missing.json["errors"] == {"card": ["Missing data for required field."]}
    nobody = str(runtime.app.user_id(LOCAL_SOURCE, "nobody"))
    assert console.simulate_put(f"/api/v1/users/{nobody}/card", json={"card": "1"}, headers=root).status_code == 404
    assert console.simulate_put("/api/v1/users/not-a-uuid/pin", json={}, headers=root).status_code == 404

    r = console.simulate_put(pin, json={"pin": "12ab"}, headers=root)
    assert r.status_code == 400 and r.json["errors"] == {"pin": ["4 to 12 digits"]}
    r = console.simulate_put(pin, json={}, headers=root)
    assert r.status_code == 200 and r.json["generated"] is True and re.fullmatch(r"\d{6}", r.json["pin"])
    assert "no-store" in r.headers["Cache-Control"]
    generated = r.json["pin"]
    settled(runtime)  # uniqueness is checked in the users read model
    r = console.simulate_put(f"/api/v1/users/{lee}/pin", json={"pin": generated}, headers=root)
    assert r.status_code == 409 and list(r.json["errors"]) == ["pin"]
    r = console.simulate_put(f"/api/v1/users/{lee}/pin", json={"pin": "8642"}, headers=root)
    assert r.status_code == 200 and r.json == {"id": lee, "generated": False}
    settled(runtime)
    listed = {u["login"]: u for u in console.simulate_get("/api/v1/users", headers=root).json["users"]}
    assert (listed["kim"]["card"], listed["kim"]["has_pin"], listed["lee"]["has_pin"]) == ("7001", True, True)


def test_the_users_page_sets_a_card_and_resets_a_pin_with_the_apis_words_beside_the_field(console, runtime):
    root = login(console, "root", "root-pw-123")
    cookie, csrf = {"Cookie": root["Cookie"]}, root["X-CSRF-Token"]
    kim, lee = str(runtime.app.user_id(LOCAL_SOURCE, "kim")), str(runtime.app.user_id(LOCAL_SOURCE, "lee"))

    page = console.simulate_get("/users", headers=cookie).text
    assert f'<label class="sr-only" for="card-{kim}">Card number of kim</label>' in page
    assert f'for="pin-{kim}">New PIN of kim' in page

    # Without the form's token: refused, nothing set.
    r = console.simulate_post(f"/users/{kim}/card", headers={**cookie, **FORM}, body="card=7001")
    assert r.status_code == 403
    r = console.simulate_post(f"/users/{kim}/card", headers={**cookie, **FORM},
                              body=f"csrf_token={csrf}&card=%3Cb%3E1")
    api = console.simulate_put(f"/api/v1/users/{kim}/card", headers=root, json={"card": "<b>1"})
    assert r.status_code == 400 and api.status_code == 400
    said = api.json["errors"]["card"][0]
    assert f'<span class="field-error" id="card-{kim}-error">{said}</span>' in r.text
    assert f'aria-invalid="true" aria-describedby="card-{kim}-error"' in r.text
    assert 'value="&lt;b&gt;1"' in r.text and "<b>1" not in r.text  # what was entered, escaped

    r = console.simulate_post(f"/users/{kim}/card", headers={**cookie, **FORM}, body=f"csrf_token={csrf}&card=7001")
    assert r.status_code == 303 and r.headers["Location"] == "/users?done=saved"
    assert runtime.card_holder("7001") == "kim"  # the page waited for the read model
    r = console.simulate_post(f"/users/{lee}/card", headers={**cookie, **FORM}, body=f"csrf_token={csrf}&card=7001")
    assert r.status_code == 409 and f'id="card-{lee}-error">card 7001 is held by kim' in r.text

    r = console.simulate_post(f"/users/{kim}/pin", headers={**cookie, **FORM}, body=f"csrf_token={csrf}&pin=12")
    assert r.status_code == 400 and f'<span class="field-error" id="pin-{kim}-error">4 to 12 digits</span>' in r.text
    assert 'value="12"' not in r.text  # a PIN is never echoed
    r = console.simulate_post(f"/users/{kim}/pin", headers={**cookie, **FORM}, body=f"csrf_token={csrf}&pin=")
    assert r.status_code == 200 and "no-store" in r.headers["Cache-Control"]
    shown = re.search(r"New PIN for kim: (\d{6})\. It is shown this once", r.text)
    assert shown and runtime.app.repository.get(runtime.app.user_id(LOCAL_SOURCE, "kim")).pin_digest == \
        runtime.pin_digest(shown.group(1))
    assert shown.group(1) not in console.simulate_get("/users", headers=cookie).text  # once
    r = console.simulate_post(f"/users/{lee}/pin", headers={**cookie, **FORM}, body=f"csrf_token={csrf}&pin=97531")
    assert r.status_code == 303

    # An auditor sees cards and whether a PIN is set, with no form to change them.
    runtime.change_role(runtime.app.user_id(LOCAL_SOURCE, "lee"), "auditor")
    settled(runtime)
    auditor = login(console, "lee", "lee-password-1")
    page = console.simulate_get("/users", headers={"Cookie": auditor["Cookie"]}).text
    assert "7001" in page and "/card" not in page and "/pin" not in page
    r = console.simulate_post(f"/users/{kim}/card", headers={"Cookie": auditor["Cookie"], **FORM},
                              body=f"csrf_token={auditor['X-CSRF-Token']}&card=1")
    assert r.status_code == 403


# --- the directory sync keeps what an admin set ------------------------------------------------

@pytest.mark.ldap
def test_a_sync_keeps_an_admins_card_and_pin_when_the_directory_gives_none(runtime, slapd):
    from slapd_harness import CONTRACTORS, SERVICE_DN, SERVICE_PASSWORD, STAFF

    def use(attributes):
        runtime.directory_config.save("ldap", LdapConfig(
            host="127.0.0.1", port=slapd.port, base_dns=(STAFF, CONTRACTORS), bind_dn=SERVICE_DN,
            bind_password=SERVICE_PASSWORD, attributes=attributes))

    def sync():
        report = runtime.sync_users()
        runtime.catch_up()
        return report

    runtime.licensing.install_trial()
    use(AttributeMap(card="employeeNumber", pin="pager"))
    sync()
    odd, alice = runtime.app.user_id("ldap", "o(dd)*name"), runtime.app.user_id("ldap", "alice")
    assert runtime.app.repository.get(odd).pin_digest == ""  # the directory has no PIN for them
    runtime.reset_pin(odd, "80808", by="root")
    bob = runtime.app.user_id("ldap", "bob")  # bob's directory card 1002 clashes with dave's: he has none
    runtime.set_card(bob, "B0B", by="root")
    runtime.catch_up()

    sync()  # the directory gives odd no PIN, and bob no card he may have: both kept
    assert runtime.app.repository.get(odd).pin_digest == runtime.pin_digest("80808")
    assert runtime.app.repository.get(bob).card == "B0B"

    use(AttributeMap(pin="pager"))  # no card attribute at all any more
    sync()
    assert runtime.app.repository.get(bob).card == "B0B"  # the admin's: kept
    assert runtime.app.repository.get(alice).card == ""  # the directory's own: gone with the attribute
    # A newcomer the directory gives an admin's card to is a clash; the admin's holder keeps it.
    use(AttributeMap(card="employeeNumber", pin="pager"))
    slapd.add_user("erin", STAFF, "Erin Eve", "erin-pw-1", employeeNumber="B0B")
    report = sync()
    assert ("card", ("bob", "erin")) in {(c.field, c.logins) for c in report.clashes}
    assert runtime.app.repository.get(bob).card == "B0B"
    assert runtime.app.repository.get(runtime.app.user_id("ldap", "erin")).card == ""


def test_a_card_typed_in_small_letters_matches_what_a_hex_reader_sends_and_clearing_twice_records_once(runtime):
    from agent.card_readers import CardFormat, normalise

    kim = local_user(runtime, "kim")
    runtime.set_secure_hold("vault", True)
    runtime.catch_up()
    assert runtime.set_card(kim, "a1b2c", by="root") is True  # typed from a badge's label
    runtime.catch_up()
    job = held(runtime, "kim")
    swiped = normalise("a1b2c\r\n", CardFormat(format="hex", output="hex"))  # what the reader's line becomes
    assert runtime.card_holder(swiped) == "kim"
    outcome = runtime.swipe_card("vault", swiped)
    assert (outcome.outcome, list(outcome.jobs)) == ("released", [job])

    assert runtime.set_card(kim, "", by="root") is True
    head = runtime.app.recorder.max_notification_id()
    assert runtime.set_card(kim, "", by="root") is False  # already empty: nothing recorded
    assert runtime.app.recorder.max_notification_id() == head
