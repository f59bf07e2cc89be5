"""Local accounts: argon2-hashed passwords checked without revealing which logins exist."""
from __future__ import annotations

import pytest

from adapters.directory import AuthenticationFailed, LocalAccount, LocalDirectory, hash_password


_HASH = hash_password("correct horse")  # argon2 is slow on purpose: hash once for the module


def directory():
    accounts = {
        "admin": LocalAccount("admin", _HASH, profile={"full_name": "Admin"}),
        "gone": LocalAccount("gone", _HASH, active=False),
    }
    return LocalDirectory(accounts.get, lambda: iter(accounts.values()))


def test_the_right_password_logs_in():
    assert directory().authenticate("Admin", "correct horse").full_name == "Admin"


@pytest.mark.parametrize("login,password", [("admin", "wrong"), ("admin", ""), ("nobody", "correct horse"),
                                            ("gone", "wrong"), ("", "")])
def test_anything_else_is_refused(login, password):
    with pytest.raises(AuthenticationFailed):
        directory().authenticate(login, password)


def test_an_inactive_account_s_password_is_still_checked_and_the_login_decides():
    # Like LDAP: the directory vouches for the password; LogIn then says "inactive".
    assert directory().authenticate("gone", "correct horse").login == "gone"


def test_hashes_are_argon2_and_short_passwords_are_refused():
    assert hash_password("long enough").startswith("$argon2id$")
    with pytest.raises(ValueError, match="8 characters"):
        hash_password("short")


def test_only_active_accounts_are_listed():
    assert [u.login for u in directory().users()] == ["admin"]


def test_an_ldap_directory_cannot_take_the_name_of_the_local_accounts():
    from adapters.directory import LdapConfig, LdapConfigError

    with pytest.raises(LdapConfigError) as refused:
        LdapConfig(host="ldap.example.org", base_dns=("dc=example,dc=org",), source="Local")
    assert set(refused.value.problems) == {"source"}
