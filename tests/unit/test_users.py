"""The User aggregate: import, profile changes, activation, cards, PINs, local passwords."""
from __future__ import annotations

import pytest

from adapters.event_store import PageLedger
from domain.users import LOCAL_SOURCE, User, UserError, user_id

T0 = 1_764_000_000 * 1_000_000


def alice(source="ldap") -> User:
    return User.import_(source=source, login="alice", profile={"full_name": "Alice A", "email": "a@x"}, now=T0)


def test_the_same_login_in_the_same_source_is_the_same_user():
    assert alice().id == user_id("ldap", "ALICE ")
    assert alice().id != user_id("local", "alice")


def test_only_changed_profile_fields_are_recorded():
    user = alice()
    assert not user.change_profile({"full_name": "Alice A", "email": "a@x"}, T0)
    assert user.change_profile({"full_name": "Alice B", "email": "a@x", "department": "Ops"}, T0)
    changed = user.collect_events()[-1]
    assert changed.profile == {"full_name": "Alice B", "department": "Ops"}


def test_unknown_profile_fields_are_refused():
    with pytest.raises(UserError, match="unknown profile fields: pin"):
        User.import_(source="ldap", login="x", profile={"pin": "1234"}, now=T0)


def test_deactivate_and_activate_are_recorded_only_on_change():
    user = alice()
    assert user.deactivate(T0, "left_directory")
    assert not user.deactivate(T0, "admin")
    assert not user.active
    assert user.activate(T0)
    assert user.active


def test_a_directory_user_keeps_no_password_and_a_local_one_only_a_hash():
    with pytest.raises(UserError, match="only local accounts"):
        alice().set_password_hash("$argon2id$v=19$...", T0)
    local = alice(LOCAL_SOURCE)
    with pytest.raises(UserError, match="argon2"):
        local.set_password_hash("secret", T0)
    local.set_password_hash("$argon2id$v=19$abc", T0)


def test_the_user_replays_from_the_compact_event_store():
    app = PageLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    user = alice()
    user.assign_card("  0042 ", T0)
    user.change_pin("digest", T0)
    user.change_profile({"full_name": "Alice C"}, T0)
    user.deactivate(T0, "admin")
    app.save(user)
    again = app.repository.get(user.id)
    assert (again.card, again.pin_digest, again.active) == ("0042", "digest", False)
    assert again.profile == {"full_name": "Alice C", "email": "", "department": ""}


def test_a_removed_local_account_is_inactive_keeps_no_secrets_and_refuses_changes():
    local = User.import_(source=LOCAL_SOURCE, login="kim", profile={"full_name": "Kim"}, now=T0, role="admin")
    local.set_password_hash("$argon2id$v=19$abc", T0)
    local.assign_card("77", T0)
    local.change_pin("digest", T0)
    assert local.remove(T0)
    assert not local.remove(T0)  # once
    assert (local.active, local.removed, local.password_hash, local.card, local.pin_digest) == (
        False, True, "", "", "")
    for change in (lambda: local.activate(T0), lambda: local.change_role("user", T0),
                   lambda: local.set_password_hash("$argon2id$v=19$def", T0)):
        with pytest.raises(UserError, match="was removed"):
            change()


def test_a_removed_account_can_be_added_again_under_its_login():
    app = PageLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    local = User.import_(source=LOCAL_SOURCE, login="kim", profile={"full_name": "Kim"}, now=T0, role="admin")
    with pytest.raises(UserError, match="already exists"):
        local.add_again(role="user", profile={}, now=T0)
    local.remove(T0)
    local.add_again(role="auditor", profile={"email": "kim@x"}, now=T0)
    local.set_password_hash("$argon2id$v=19$new", T0)
    app.save(local)
    again = app.repository.get(user_id(LOCAL_SOURCE, "kim"))
    assert (again.active, again.removed, again.role, again.password_hash) == (True, False, "auditor",
                                                                              "$argon2id$v=19$new")
    assert again.profile == {"full_name": "", "email": "kim@x", "department": ""}


def test_directory_users_are_removed_in_their_directory_not_here():
    with pytest.raises(UserError, match="comes from the directory 'ldap'"):
        alice().remove(T0)


def test_a_card_or_pin_an_admin_set_is_marked_theirs_and_the_sync_never_takes_it_over():
    user = alice()
    assert user.assign_card("0042", T0, by="root") and (user.card, user.card_by) == ("0042", "root")
    assert not user.assign_card("0042", T0)  # the sync giving the same card records nothing
    assert not user.assign_card("0042", T0, by="other-admin")
    assert user.assign_card("", T0, by="root") and (user.card, user.card_by) == ("", "")
    assert user.change_pin("digest", T0, by="root") and user.pin_by == "root"
    assert not user.change_pin("digest", T0)
    assert user.change_pin("other", T0) and user.pin_by == ""  # the directory's PIN replaces it
    local = User.import_(source=LOCAL_SOURCE, login="kim", profile={}, now=T0)
    local.remove(T0)
    with pytest.raises(UserError, match="was removed"):
        local.assign_card("1", T0, by="root")


def test_cards_and_pins_recorded_before_their_author_was_kept_replay_as_the_directorys():
    from adapters.codec import CompactMapper, MsgpackTranscoder
    from eventsourcing.persistence import StoredEvent

    user = alice()
    user.assign_card("0042", T0, by="root")
    user.change_pin("digest", T0, by="root")
    mapper = CompactMapper(transcoder=MsgpackTranscoder())
    for recorded in user.collect_events()[1:]:
        stored = mapper.to_stored_event(recorded)
        values = MsgpackTranscoder().decode(stored.state)
        assert values[-1] == "root"
        older = StoredEvent(originator_id=stored.originator_id, originator_version=stored.originator_version,
                            topic=stored.topic, state=MsgpackTranscoder().encode(values[:-1]))
        assert mapper.to_domain_event(older).by == ""


def test_a_keyed_user_id_is_a_version_8_uuid_of_the_login_under_the_key_never_the_uuid5():
    from domain.users import keyed_user_id

    a = keyed_user_id(b"k" * 32, "ldap", "ALICE ")
    assert a == keyed_user_id(b"k" * 32, "ldap", "alice") and a.version == 8
    assert a != keyed_user_id(b"j" * 32, "ldap", "alice") and a != user_id("ldap", "alice")
    assert a != keyed_user_id(b"k" * 32, "local", "alice")
