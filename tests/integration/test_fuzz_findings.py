"""What the fuzz tier (tests/fuzz) found answered with a 5xx, each now a 4xx naming the field:
licence endpoints asked what this server cannot do, a login PostgreSQL cannot store."""
from __future__ import annotations

import falcon.testing

from api.app import create_app


def _admin(runtime) -> dict[str, str]:
    _, token = runtime.issue_token(name="admin", role="admin")
    runtime.catch_up()
    return {"Authorization": f"Bearer {token}"}


def test_licence_settings_before_setup_are_refused_naming_the_field(runtime):
    client = falcon.testing.TestClient(create_app(runtime))
    answer = client.simulate_put("/api/v1/licence/settings", json={"track_unlicensed": True}, headers=_admin(runtime))
    assert answer.status_code == 409, answer.text
    assert "setup" in answer.json["errors"]["track_unlicensed"][0]


def test_online_activation_without_an_activation_service_is_refused_naming_the_method(runtime):
    client = falcon.testing.TestClient(create_app(runtime))
    answer = client.simulate_post("/api/v1/licence/activation", headers=_admin(runtime),
                                  json={"method": "online", "company": "Acme", "key": "ABCD-EFGH"})
    assert answer.status_code == 409, answer.text
    assert "activate via file" in answer.json["errors"]["method"][0]


def test_a_login_with_a_nul_character_is_a_bad_field_not_a_server_error(runtime):
    client = falcon.testing.TestClient(create_app(runtime))
    answer = client.simulate_post("/Authentication/Login", json={"login": "kim\u0000", "password": "secret"})
    assert answer.status_code == 400, answer.text
    assert answer.json["errors"]["login"] == ["a login cannot contain control characters"]
