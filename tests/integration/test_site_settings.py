"""Site settings: each field saved on its own, one event per change, stale changes refused."""
from __future__ import annotations

import falcon.testing
import pytest

from api.app import create_app
from commands.site_settings import ChangeSetting, SiteSettingsReader
from domain.site_settings import FIELDS, SettingError, SiteSettings, StaleSetting, site_settings_id


def _client(runtime):
    runtime.add_local_user(login="ann", password="ann-pw-4567", role="admin", profile={})
    runtime.add_local_user(login="bob", password="bob-pw-4567", role="admin", profile={})
    _, ann = runtime.issue_token(name="ann", role="admin", subject="ann")
    _, bob = runtime.issue_token(name="bob", role="admin", subject="bob")
    _, kim = runtime.issue_token(name="kim", role="user", subject="kim")
    runtime.catch_up()
    client = falcon.testing.TestClient(create_app(runtime))
    return client, *({"Authorization": f"Bearer {t}"} for t in (ann, bob, kim))


def test_each_field_is_saved_alone_with_who_and_the_old_value(runtime):
    client, ann, bob, kim = _client(runtime)
    listed = client.simulate_get("/api/v1/settings", headers=ann)
    assert listed.status_code == 200
    values = {s["name"]: s["value"] for s in listed.json["settings"]}
    assert values == {name: spec.default for name, spec in FIELDS.items()}

    # Two admins edit different fields from the same page: neither overwrites the other.
    one = client.simulate_patch("/api/v1/settings/timezone", headers=ann,
                                json={"value": "Europe/Paris", "expected": "UTC"})
    two = client.simulate_patch("/api/v1/settings/document_names", headers=bob,
                                json={"value": "mask", "expected": "keep"})
    assert (one.status_code, one.json["value"]) == (200, "Europe/Paris"), one.json
    assert (two.status_code, two.json["value"]) == (200, "mask"), two.json

    # The same field from a stale value: refused, with the current value named; nothing written.
    stale = client.simulate_patch("/api/v1/settings/timezone", headers=bob,
                                  json={"value": "Asia/Tokyo", "expected": "UTC"})
    assert stale.status_code == 409 and "Europe/Paris" in stale.json["errors"]["current"][0], stale.json

    aggregate: SiteSettings = runtime.app.repository.get(site_settings_id(runtime.app.server_id))
    changes = [(e.field, e.old, e.new, e.by) for e in runtime.app.repository.event_store.get(aggregate.id)
               if type(e).__name__ == "FieldChanged"]
    assert changes == [("timezone", "UTC", "Europe/Paris", "ann"), ("document_names", "keep", "mask", "bob")]
    # Users cannot read or change settings.
    assert client.simulate_get("/api/v1/settings", headers=kim).status_code == 403
    assert client.simulate_patch("/api/v1/settings/timezone", headers=kim, json={"value": "UTC"}).status_code == 403


@pytest.mark.parametrize("field,value,message", [
    ("timezone", "Mars/Olympus", "unknown time zone"),
    ("timezone", "Europe/Paris\n", "IANA"),
    ("timezone", 5, "IANA"),
    ("document_names", "shred", "must be one of"),
    ("document_names", {"a": 1}, "must be one of"),
])
def test_a_bad_value_is_refused_naming_the_field_and_nothing_is_written(runtime, field, value, message):
    client, ann, _bob, _kim = _client(runtime)
    head = runtime.app.recorder.max_notification_id()
    refused = client.simulate_patch(f"/api/v1/settings/{field}", headers=ann, json={"value": value})
    assert refused.status_code == 400 and message in refused.json["errors"]["value"][0], refused.json
    assert runtime.app.recorder.max_notification_id() == head
    assert client.simulate_patch("/api/v1/settings/nope", headers=ann, json={"value": 1}).status_code == 404
    assert client.simulate_patch(f"/api/v1/settings/{field}", headers=ann, json={}).status_code == 400


def test_another_process_sees_a_change_within_its_cache_time(runtime):
    elsewhere = SiteSettingsReader(runtime.app, ttl=60)
    assert elsewhere["timezone"] == "UTC"
    ChangeSetting(runtime.app, SiteSettingsReader(runtime.app))("timezone", "America/New_York", by="cli")
    assert elsewhere["timezone"] == "UTC"  # cached
    elsewhere.invalidate()
    assert elsewhere["timezone"] == "America/New_York"
    # Setting the value it already holds records nothing.
    head = runtime.app.recorder.max_notification_id()
    assert runtime.change_setting("timezone", "America/New_York", by="cli").changed is False
    assert runtime.app.recorder.max_notification_id() == head
    with pytest.raises(StaleSetting):
        runtime.change_setting("timezone", "UTC", by="cli", expected="Europe/Paris")
    with pytest.raises(SettingError):
        runtime.change_setting("missing", "x", by="cli")
