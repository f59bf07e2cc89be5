"""Setup wizard, web login, sessions and licence over HTTP, against `pageledger up` and a real slapd."""
from __future__ import annotations

import base64

import pytest
import requests

from adapters.licence_keys import decode_key, this_host
from tests.conftest import make_live_server, wait_until
from tests.integration.conftest import slapd_server  # noqa: F401 - fixture
from tools.licence_issuer import issue_key, issue_licence, make_key_pair

from slapd_harness import CONTRACTORS, SERVICE_DN, SERVICE_PASSWORD, STAFF  # noqa: E402  (path set by conftest)

pytestmark = pytest.mark.ldap
ISSUER = make_key_pair()


@pytest.fixture
def server(tmp_path, slapd_server):  # noqa: F811
    public = base64.b64encode(ISSUER.public_key().public_bytes_raw()).decode()
    # The wizard connects only to LDAP ports: the test's slapd listens on a port of its own.
    live = make_live_server(tmp_path, PAGELEDGER_LICENCE_PUBLIC_KEY=public,
                            PAGELEDGER_SETUP_LDAP_PORTS=f"389,636,{slapd_server.port}")
    live.track_unlicensed = False
    live.start()
    yield live
    live.stop()


def licence_for_this_server(seats: int, company: str = "Acme Ltd") -> str:
    key = issue_key(ISSUER, type="suite", seats=seats, expires_at=0, company=company)
    here = this_host()
    return issue_licence(ISSUER, decode_key(key, ISSUER.public_key()), host=here.host, mac=here.mac,
                         method="file", issued_at=0)


def setup_body(server, slapd, **changes):
    body = {"setup_code": server.setup_code,
        "network_type": "ldap", "ldap_host": "127.0.0.1", "ldap_port": slapd.port, "ldap_kind": "openldap",
        "ldap_base_dns": f"{STAFF}\n{CONTRACTORS}", "ldap_bind_dn": SERVICE_DN,
        "ldap_bind_password": SERVICE_PASSWORD, "ldap_card_attribute": "employeeNumber",
        "licence_mode": "file", "company": "Acme Ltd", "licence_file": licence_for_this_server(2),
        "admin_login": "carol", "admin_password": "carol-pw-4444",
    }
    body.update(changes)
    return body


def session_cookie(response) -> dict[str, str]:
    # requests keeps Secure cookies away from http://, so the tests carry the cookie themselves.
    header = response.headers["Set-Cookie"]
    # Secure exactly over HTTPS (tests/e2e/test_console_browser.py): these tests speak plain HTTP.
    assert "Secure" not in header and "HttpOnly" in header and "SameSite=Strict" in header
    return {"Cookie": f"pl_session={response.cookies['pl_session']}"}


def events(server) -> int:
    return requests.get(server.url + "/healthz", timeout=30).json()["events"]


def login(server, user, password):
    return requests.post(server.url + "/Authentication/Login", json={"login": user, "password": password}, timeout=30)


def test_setup_wizard_then_logins_seats_and_licence(server, slapd_server):  # noqa: F811
    # Roles: no credentials 401; an agent's token may not read the licence or users; an admin's may.
    for path in ("/api/v1/licence", "/api/v1/users"):
        assert requests.get(server.url + path, timeout=30).status_code == 401
        assert requests.get(server.url + path, headers=server.headers(server.agent_token), timeout=30).status_code == 403
        assert requests.get(server.url + path, headers=server.headers(server.admin_token), timeout=30).status_code == 200
    assert requests.post(server.url + "/api/v1/users/sync", headers=server.headers(server.agent_token),
                         timeout=30).status_code == 403
    url = server.url + "/Setup/NetworkSetup"
    page = requests.get(url, params={"setup_code": server.setup_code}, timeout=30)
    assert page.status_code == 200 and this_host().mac in page.text and "Step 3" in page.text

    # Step 1's connection test says what is wrong; bad input names each field and writes nothing.
    before = events(server)
    r = requests.post(url, json=setup_body(server, slapd_server, action="test", ldap_bind_password="nope"), timeout=30)
    assert r.status_code == 400 and "invalidCredentials" in r.json()["errors"]["ldap"][0]
    r = requests.post(url, json=setup_body(server, slapd_server, action="test"), timeout=30)
    assert r.status_code == 200 and r.json()["message"].endswith("5 users found")
    r = requests.post(url, json=setup_body(server, slapd_server, admin_login="", licence_file="", ldap_port=70000),
                      timeout=30)
    assert r.status_code == 400 and set(r.json()["errors"]) == {"admin_login", "licence_file", "ldap_port"}
    r = requests.post(url, json=setup_body(server, slapd_server, ldap_base_dns="not a dn"), timeout=30)
    assert r.status_code == 400 and set(r.json()["errors"]) == {"ldap_base_dns"}
    r = requests.post(url, json=setup_body(server, slapd_server, company="Globex"), timeout=30)
    assert r.status_code == 400 and "not to 'Globex'" in r.json()["errors"]["licence_file"][0]
    r = requests.post(url, json=setup_body(server, slapd_server, admin_password="wrong"), timeout=30)
    assert r.status_code == 400 and set(r.json()["errors"]) == {"admin_password"}
    assert events(server) == before

    # Step 3 verified against the directory: carol becomes the admin and is logged in.
    r = requests.post(url, json=setup_body(server, slapd_server), timeout=20)
    assert r.status_code == 201, r.text
    admin = session_cookie(r)
    csrf = r.json()["csrf_token"]
    # Closed for good.
    assert requests.get(url, timeout=30).status_code == 410
    assert requests.post(url, json=setup_body(server, slapd_server, admin_login="alice", admin_password="alice-pw-1"),
                         timeout=30).status_code == 410

    # The read model follows the log a moment later (projections run in their own process).
    licence = wait_until(lambda: (lic := requests.get(server.url + "/api/v1/licence", headers=admin,
                                                      timeout=30).json()["licence"])["type"] == "suite" and lic)
    assert (licence["type"], licence["seats_allowed"], licence["activation_method"]) == ("suite", 2, "file")
    # A cookie session must echo its CSRF token to change anything.
    assert requests.put(server.url + "/api/v1/licence/settings", json={"track_unlicensed": False}, headers=admin,
                        timeout=30).status_code == 403
    assert requests.put(server.url + "/api/v1/licence/settings", json={"track_unlicensed": False},
                        headers={**admin, "X-CSRF-Token": csrf}, timeout=30).status_code == 200

    # Users take seats by logging in; the third is refused; admins never need one.
    assert login(server, "alice", "alice-pw-1").json()["role"] == "user"
    assert login(server, "dave", "dave-pw-333").status_code == 200
    refused = login(server, "o(dd)*name", "odd-pw-55555")
    assert refused.status_code == 403 and refused.json()["outcome"] == "no_seat"
    assert login(server, "carol", "carol-pw-4444").json()["role"] == "admin"
    user_session = session_cookie(login(server, "alice", "alice-pw-1"))
    assert requests.get(server.url + "/api/v1/licence", headers=user_session, timeout=30).status_code == 403

    # Wrong passwords are throttled after five, even when the sixth is right.
    for _ in range(5):
        assert login(server, "bob", "guess").status_code == 401
    throttled = login(server, "bob", "bob-pw-22")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    # An injection attempt is just a wrong login.
    assert login(server, "*)(uid=*", "x").status_code == 401

    # The admin sets alice Inactive: her open session stops working, and she cannot log in again.
    listed = wait_until(lambda: {u["login"]: u for u in requests.get(server.url + "/api/v1/users", headers=admin,
                                                                     timeout=30).json()["users"]}.get("alice"))
    r = requests.put(server.url + f"/api/v1/users/{listed['id']}/active", json={"active": False},
                     headers={**admin, "X-CSRF-Token": csrf}, timeout=30)
    assert r.status_code == 200 and r.json()["changed"] is True
    assert requests.put(server.url + f"/api/v1/users/{listed['id']}/active", json={"active": "maybe"},
                        headers={**admin, "X-CSRF-Token": csrf}, timeout=30).json()["errors"].keys() == {"active"}
    wait_until(lambda: requests.get(server.url + "/api/v1/jobs", headers=user_session,
                                    timeout=30).status_code == 401, timeout=20)
    assert login(server, "alice", "alice-pw-1").json()["outcome"] == "inactive"

    # Every attempt was audited, none with a password in it.
    log = (server.workdir / "server.log").read_text()
    assert "login bad_credentials for 'bob'" in log and "no_seat" in log
    assert "guess" not in log and "alice-pw-1" not in log and SERVICE_PASSWORD not in log


def test_the_login_form_needs_its_csrf_token_and_escapes_what_it_shows(server):
    page = requests.get(server.url + "/Authentication/Login", timeout=30)
    token = page.cookies["pl_csrf"]
    assert f'value="{token}"' in page.text
    no_token = requests.post(server.url + "/Authentication/Login",
                             data={"login": "x", "password": "y"}, timeout=30)
    assert no_token.status_code == 403
    wrong = requests.post(server.url + "/Authentication/Login", data={"login": "<b>x</b>", "password": "y",
                                                                     "csrf_token": token},
                          headers={"Cookie": f"pl_csrf={token}"}, timeout=30)
    assert wrong.status_code == 401 and "<b>" not in wrong.text and "wrong login or password" in wrong.text
    bad = requests.post(server.url + "/Authentication/Login", json={"login": ""}, timeout=30)
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"login", "password"}
