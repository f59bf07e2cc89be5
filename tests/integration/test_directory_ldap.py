"""LDAP and AD-style directory sources against a real private OpenLDAP slapd."""
from __future__ import annotations

from dataclasses import replace

import ldap3
import pytest

from adapters.directory import (
    ACTIVE_DIRECTORY, AttributeMap, AuthenticationFailed, DirectoryError, LdapConfig, LdapDirectory,
)
from slapd_harness import (
    AD_OU, BASE_DN, CONTRACTORS, GROUP_DN, SERVICE_DN, SERVICE_PASSWORD, STAFF, USERS,
)

pytestmark = pytest.mark.ldap


def config(server, **changes) -> LdapConfig:
    base = LdapConfig(host="127.0.0.1", port=server.port, base_dns=(STAFF, CONTRACTORS), bind_dn=SERVICE_DN,
                      bind_password=SERVICE_PASSWORD, attributes=AttributeMap(card="employeeNumber", pin="pager"))
    return replace(base, **changes)


def logins(directory) -> set[str]:
    return {u.login for u in directory.users()}


def test_search_finds_users_of_both_ous_with_their_mapped_attributes(slapd_server):
    users = {u.login: u for u in LdapDirectory(config(slapd_server)).users()}
    assert set(users) == set(USERS)
    alice = users["alice"]
    assert (alice.full_name, alice.email, alice.department, alice.card, alice.pin) == \
        ("Alice Archer", "alice@example.org", "Finance", "1001", "4321")
    assert alice.dn == f"uid=alice,{STAFF}"
    assert "4321" not in repr(alice)  # a PIN never shows in logs or tracebacks


def test_an_ou_filter_limits_the_search_to_that_ou(slapd_server):
    assert logins(LdapDirectory(config(slapd_server, base_dns=(CONTRACTORS,)))) == {"carol", "o(dd)*name"}


def test_a_group_filter_keeps_only_the_group_members(slapd_server):
    assert logins(LdapDirectory(config(slapd_server, group_dn=GROUP_DN))) == {"alice", "carol"}


def test_an_admin_filter_narrows_the_search(slapd_server):
    assert logins(LdapDirectory(config(slapd_server, user_filter="(departmentNumber=Sales)"))) == {"bob", "dave"}


def test_a_missing_group_is_reported(slapd_server):
    with pytest.raises(DirectoryError, match="group .* was not found"):
        list(LdapDirectory(config(slapd_server, group_dn=f"cn=nope,ou=Groups,{BASE_DN}")).users())


def test_an_injection_attempt_in_a_login_finds_nobody(slapd_server):
    directory = LdapDirectory(config(slapd_server))
    attack = "*)(uid=*"
    escaped = directory.login_filter(attack)
    assert escaped == r"(uid=\2a\29\28uid=\2a)"
    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=slapd_server.port), SERVICE_DN, SERVICE_PASSWORD,
                            auto_bind=True)
    try:
        conn.search(BASE_DN, directory._filter(escaped), attributes=["uid"])
        assert conn.entries == []
        # The same text unescaped would have matched every user: the test above can fail.
        conn.search(BASE_DN, f"(&(objectClass=inetOrgPerson)(uid={attack}))", attributes=["uid"])
        assert len(conn.entries) == len(USERS)
    finally:
        conn.unbind()
    assert directory.find(attack) is None
    with pytest.raises(AuthenticationFailed):
        directory.authenticate("*", "alice-pw-1")


def test_a_login_with_filter_characters_is_found_exactly(slapd_server):
    directory = LdapDirectory(config(slapd_server))
    assert directory.find("o(dd)*name").full_name == "Odd Name"
    assert directory.authenticate("o(dd)*name", "odd-pw-55555").login == "o(dd)*name"


def test_authenticate_accepts_the_right_password_and_refuses_a_wrong_or_empty_one(slapd_server):
    directory = LdapDirectory(config(slapd_server))
    assert directory.authenticate("ALICE", "alice-pw-1").login == "alice"
    for login, password in (("alice", "wrong"), ("alice", ""), ("nobody", "x"), ("", "alice-pw-1"),
                            ("alice", "bob-pw-22")):
        with pytest.raises(AuthenticationFailed):
            directory.authenticate(login, password)


def test_authenticate_respects_the_group_filter(slapd_server):
    directory = LdapDirectory(config(slapd_server, group_dn=GROUP_DN))
    assert directory.authenticate("carol", "carol-pw-4444").login == "carol"
    with pytest.raises(AuthenticationFailed):
        directory.authenticate("bob", "bob-pw-22")  # right password, not in the group


def test_a_wrong_service_password_or_unreachable_server_is_a_clear_directory_error(slapd_server):
    with pytest.raises(DirectoryError, match="service account .* could not bind: invalidCredentials"):
        LdapDirectory(config(slapd_server, bind_password="nope")).test_connection()
    with pytest.raises(DirectoryError, match="cannot reach 127.0.0.1:9"):
        LdapDirectory(config(slapd_server, port=9, timeout=2)).test_connection()


def test_starttls_and_ldaps_connect_with_the_directory_ca(slapd_server):
    starttls = LdapDirectory(config(slapd_server, security="starttls", ca_file=str(slapd_server.ca_file)))
    assert starttls.test_connection().endswith(f"{len(USERS)} users found")
    assert starttls.authenticate("bob", "bob-pw-22").login == "bob"
    ldaps = LdapDirectory(config(slapd_server, security="ldaps", port=slapd_server.ldaps_port,
                                 ca_file=str(slapd_server.ca_file)))
    assert ldaps.authenticate("carol", "carol-pw-4444").login == "carol"


def test_tls_to_an_untrusted_certificate_is_refused(slapd_server):
    # Without the test CA, the system trust store does not know the server's certificate.
    with pytest.raises(DirectoryError):
        LdapDirectory(config(slapd_server, security="ldaps", port=slapd_server.ldaps_port)).test_connection()


def test_ad_style_entries_are_found_by_samaccountname_or_upn(slapd_server):
    directory = LdapDirectory(config(slapd_server, kind=ACTIVE_DIRECTORY, base_dns=(AD_OU,), attributes=None,
                                     person_filter="(objectClass=pageledgerAdUser)"))
    users = {u.login: u for u in directory.users()}
    assert set(users) == {"frank", "grace"}
    assert (users["frank"].full_name, users["frank"].department) == ("Frank Fisher", "Legal")
    assert directory.authenticate("frank", "frank-pw-1").login == "frank"
    assert directory.authenticate("Frank@corp.example", "frank-pw-1").login == "frank"
    with pytest.raises(AuthenticationFailed):
        directory.authenticate("grace@corp.example", "frank-pw-1")


def test_bad_settings_name_each_field():
    with pytest.raises(ValueError) as caught:
        LdapConfig(host="ldap://x/", base_dns=("not a dn",), security="ssl", user_filter="uid=x")
    message = str(caught.value)
    for name in ("host", "base_dns", "security", "user_filter"):
        assert f"{name}:" in message
