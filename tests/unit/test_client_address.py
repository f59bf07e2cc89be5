"""X-Forwarded-For is believed only as far as trusted proxies wrote it: the right-most untrusted hop."""
from __future__ import annotations

import pytest

from api.client_address import ClientAddress
from pageledger.settings import Settings, SettingsError

TRUSTED = Settings.load(environ={"PAGELEDGER_TRUSTED_PROXIES": "10.0.0.1, 172.16.0.0/12,::1"}).trusted_proxy_networks


@pytest.mark.parametrize("peer, header, client", [
    ("10.0.0.1", "203.0.113.7", "203.0.113.7"),
    ("10.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the client's own entry is not believed
    ("10.0.0.1", "6.6.6.6, 203.0.113.7, 172.20.1.1", "203.0.113.7"),  # through two proxies of ours
    ("10.0.0.1", "172.20.1.1", "172.20.1.1"),  # every hop ours: the left-most
    ("10.0.0.1", "junk, 172.20.1.1", "172.20.1.1"),  # not an address: stop at the last proxy
    ("10.0.0.1", None, "10.0.0.1"),
    ("192.0.2.9", "203.0.113.7", "192.0.2.9"),  # an untrusted peer's header is ignored
    ("::1", "2001:db8::5", "2001:db8::5"),
])
def test_the_client_is_the_right_most_address_not_written_by_a_trusted_proxy(peer, header, client):
    assert ClientAddress(TRUSTED)(peer, header) == client


def test_without_trusted_proxies_the_header_is_ignored():
    assert ClientAddress(Settings.load(environ={}).trusted_proxy_networks)("10.0.0.1", "203.0.113.7") == "10.0.0.1"


@pytest.mark.parametrize("name, value", [("TRUSTED_PROXIES", "10.0.0.1, proxy.example.org"),
                                         ("SETUP_LDAP_PORTS", "389,ssh"), ("SETUP_LDAP_PORTS", "70000")])
def test_malformed_proxy_or_port_lists_are_refused_at_start(name, value):
    with pytest.raises(SettingsError, match=name.lower()):
        Settings.load(environ={f"PAGELEDGER_{name}": value})
