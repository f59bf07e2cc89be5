"""A `user` token acts as its subject: it stops working when that account is set Inactive or removed."""
from __future__ import annotations

import falcon.testing

from api.app import create_app
from projections.users import active_roles


def _get(runtime, token: str) -> falcon.testing.Result:
    # A new app is a new TokenAuth, with an empty cache: what another worker would see.
    client = falcon.testing.TestClient(create_app(runtime))
    return client.simulate_get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})


def test_the_token_of_a_user_set_inactive_or_removed_is_refused(runtime):
    kim = runtime.add_local_user(login="kim", password="kim-pw-4567", role="user", profile={})
    lee = runtime.add_local_user(login="lee", password="lee-pw-4567", role="user", profile={})
    runtime.add_local_user(login="ann", password="ann-pw-4567", role="admin", profile={})
    _, kim_token = runtime.issue_token(name="kim's script", role="user", subject="kim")
    _, lee_token = runtime.issue_token(name="lee", role="user")
    _, agent_token = runtime.issue_token(name="printsrv", role="agent")
    runtime.catch_up()
    assert _get(runtime, kim_token).status_code == 200 and _get(runtime, lee_token).status_code == 200

    runtime.set_user_active(kim.id, False)
    runtime.remove_user(lee.id)
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        assert active_roles(conn, "kim") == set()
    for token in (kim_token, lee_token):
        refused = _get(runtime, token)
        assert refused.status_code == 401 and refused.json["title"] == "Account inactive", refused.json

    runtime.set_user_active(kim.id, True)
    runtime.catch_up()
    assert _get(runtime, kim_token).status_code == 200
    # Tokens of other roles name a device or a service, not an account: unchanged.
    assert _get(runtime, agent_token).status_code == 403


def test_a_running_worker_stops_the_token_within_its_cache_time(runtime):
    from api import auth

    kim = runtime.add_local_user(login="kim", password="kim-pw-4567", role="user", profile={})
    _, token = runtime.issue_token(name="kim", role="user")
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.simulate_get("/api/v1/jobs", headers=headers).status_code == 200
    runtime.set_user_active(kim.id, False)
    runtime.catch_up()
    for cache in ("_cache", "_roles_cache"):  # as if CACHE_SECONDS had passed
        for middleware in client.app._unprepared_middleware:
            if isinstance(middleware, auth.TokenAuth):
                getattr(middleware, cache).clear()
    assert client.simulate_get("/api/v1/jobs", headers=headers).status_code == 401
