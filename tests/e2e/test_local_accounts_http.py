"""Local accounts over HTTP, against `pageledger up` set up with local accounts (no directory):
an admin adds, re-passwords, re-roles, deactivates and removes accounts, and each is proved by
logging in as it."""
from __future__ import annotations

import pytest
import requests

from tests.conftest import make_live_server, wait_until


@pytest.fixture
def server(tmp_path):
    live = make_live_server(tmp_path)
    live.track_unlicensed = False
    live.start()
    yield live
    live.stop()


def events(server) -> int:
    return requests.get(server.url + "/healthz", timeout=30).json()["events"]


def login(server, user, password):
    return requests.post(server.url + "/Authentication/Login", json={"login": user, "password": password}, timeout=30)


def session(response) -> dict[str, str]:
    """Cookie and CSRF token of a login (requests keeps Secure cookies away from http://)."""
    assert response.status_code in (200, 201), response.text
    return {"Cookie": f"pl_session={response.cookies['pl_session']}", "X-CSRF-Token": response.json()["csrf_token"]}


def listed(server, headers) -> dict[str, dict]:
    return {u["login"]: u for u in requests.get(server.url + "/api/v1/users", headers=headers,
                                                timeout=30).json()["users"]}


def test_an_admin_manages_local_accounts_and_the_last_admin_is_kept(server):
    api = server.url + "/api/v1/users"
    setup = requests.post(server.url + "/Setup/NetworkSetup", json={
        "setup_code": server.setup_code, "network_type": "local", "licence_mode": "trial", "admin_login": "root",
        "admin_password": "root-pw-123"},
        timeout=30)
    assert setup.status_code == 201, setup.text
    root = session(setup)
    root_id = wait_until(lambda: listed(server, root).get("root"))["id"]

    # Only admins add accounts: the agent's token may not, nor may nobody.
    kim_body = {"login": "kim", "password": "kim-pw-4567", "role": "user", "full_name": "Kim Kay",
                "email": "kim@example.org"}
    assert requests.post(api, json=kim_body, timeout=30).status_code == 401
    assert requests.post(api, json=kim_body, headers=server.headers(server.agent_token), timeout=30).status_code == 403

    # Bad input names each bad field, and nothing is written.
    before = events(server)
    bad = requests.post(api, json={"login": " ", "password": "short", "role": "boss", "email": "nope"},
                        headers=root, timeout=30)
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {"login", "password", "role", "email"}
    assert requests.post(api, json={}, headers=root, timeout=30).json()["errors"].keys() == {
        "login", "password", "role"}
    assert events(server) == before

    added = requests.post(api, json=kim_body, headers=root, timeout=30)
    assert added.status_code == 201, added.text
    kim = added.json()
    assert (kim["login"], kim["source"], kim["role"], kim["full_name"]) == ("kim", "local", "user", "Kim Kay")
    assert "password" not in kim and "kim-pw-4567" not in added.text
    taken = requests.post(api, json=dict(kim_body, login="KIM"), headers=root, timeout=30)
    assert taken.status_code == 409 and set(taken.json()["errors"]) == {"login"}
    kim_session = session(login(server, "kim", "kim-pw-4567"))
    assert login(server, "kim", "kim-pw-4567").json()["role"] == "user"

    # An auditor reads the users but may not add one.
    audrey = requests.post(api, json={"login": "audrey", "password": "audrey-pw-1", "role": "auditor"},
                           headers=root, timeout=30)
    assert audrey.status_code == 201
    auditor = session(login(server, "audrey", "audrey-pw-1"))
    assert requests.get(api, headers=auditor, timeout=30).status_code == 200
    assert requests.post(api, json=dict(kim_body, login="eve"), headers=auditor, timeout=30).status_code == 403

    # Password: bad input 400, then the new one works and the old one no longer does.
    password = f"{api}/{kim['id']}/password"
    assert requests.put(password, json={"password": "short"}, headers=root, timeout=30).json()["errors"].keys() == {
        "password"}
    assert requests.put(password, json={"password": "kim-new-pw-1"}, headers=root, timeout=30).status_code == 200
    assert login(server, "kim", "kim-pw-4567").status_code == 401
    assert login(server, "kim", "kim-new-pw-1").status_code == 200

    # Inactive: the right password is told so; a wrong one learns nothing.
    assert requests.put(f"{api}/{audrey.json()['id']}/active", json={"active": False}, headers=root,
                        timeout=30).status_code == 200
    inactive = login(server, "audrey", "audrey-pw-1")
    assert inactive.status_code == 403
    assert (inactive.json()["outcome"], inactive.json()["description"]) == ("inactive", "this account is inactive")
    wrong = login(server, "audrey", "audrey-pw-x")
    assert wrong.status_code == 401 and wrong.json()["description"] == "wrong login or password"

    # The last active admin cannot be demoted, set Inactive or removed: 409 naming the field.
    for method, url, body, field in (("put", f"{api}/{root_id}/role", {"role": "user"}, "role"),
                                     ("put", f"{api}/{root_id}/active", {"active": False}, "active"),
                                     ("delete", f"{api}/{root_id}", None, "user_id")):
        refused = requests.request(method, url, json=body, headers=root, timeout=30)
        assert refused.status_code == 409, (url, refused.text)
        assert "root is the last active admin" in refused.json()["errors"][field][0]
    assert requests.put(f"{api}/{kim['id']}/role", json={"role": "boss"}, headers=root,
                        timeout=30).json()["errors"].keys() == {"role"}
    promoted = requests.put(f"{api}/{kim['id']}/role", json={"role": "admin"}, headers=root, timeout=30)
    assert promoted.status_code == 200 and promoted.json()["changed"] is True
    assert login(server, "kim", "kim-new-pw-1").json()["role"] == "admin"

    # Removed: cannot log in, its session stops, gone from the list; the login can be added again.
    removed = requests.delete(f"{api}/{kim['id']}", headers=root, timeout=30)
    assert removed.status_code == 204, removed.text
    assert login(server, "kim", "kim-new-pw-1").status_code == 401
    wait_until(lambda: requests.get(server.url + "/api/v1/jobs", headers=kim_session,
                                    timeout=30).status_code == 401, timeout=20)
    wait_until(lambda: "kim" not in listed(server, root))
    assert requests.delete(f"{api}/{kim['id']}", headers=root, timeout=30).status_code == 404
    assert requests.delete(f"{api}/not-a-uuid", headers=root, timeout=30).status_code == 404
    assert requests.put(f"{api}/{kim['id']}/password", json={"password": "kim-pw-again"}, headers=root,
                        timeout=30).status_code == 404
    again = requests.post(api, json={"login": "kim", "password": "kim-pw-again", "role": "user"}, headers=root,
                          timeout=30)
    assert again.status_code == 201 and again.json()["id"] == kim["id"]
    assert login(server, "kim", "kim-pw-again").json()["role"] == "user"
    assert wait_until(lambda: listed(server, root).get("kim"))["full_name"] == ""

    # A session carries the role it was opened with: once the role changes it stops (within
    # seconds), so a demoted admin keeps no admin rights until the session expires.
    audrey_id = audrey.json()["id"]
    assert requests.put(f"{api}/{audrey_id}/active", json={"active": True}, headers=root, timeout=30).status_code == 200
    audrey_auditor = session(login(server, "audrey", "audrey-pw-1"))
    assert requests.put(f"{api}/{audrey_id}/role", json={"role": "admin"}, headers=root, timeout=30).status_code == 200
    stale = wait_until(lambda: (r := requests.get(api, headers=audrey_auditor, timeout=30)).status_code == 401
                       and r.json(), timeout=20)
    assert "log in again" in stale["description"]
    audrey_admin = session(login(server, "audrey", "audrey-pw-1"))
    assert requests.put(f"{api}/{root_id}/role", json={"role": "user"}, headers=audrey_admin,
                        timeout=30).status_code == 200
    wait_until(lambda: requests.get(api, headers=root, timeout=30).status_code == 401, timeout=20)
    assert requests.get(api, headers=audrey_admin, timeout=30).status_code == 200

    log = (server.workdir / "server.log").read_text()
    for secret in ("root-pw-123", "kim-pw-4567", "kim-new-pw-1", "kim-pw-again", "audrey-pw-1"):
        assert secret not in log
