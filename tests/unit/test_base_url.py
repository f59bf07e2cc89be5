"""The base URL `pageledger up` and `serve` print: one an admin can paste into a browser or curl."""
from pageledger.cli import base_url


def test_a_wildcard_address_is_reached_as_localhost():
    assert base_url("0.0.0.0", 6320) == "http://localhost:6320"
    assert base_url("", 6320) == "http://localhost:6320"
    assert base_url("::", 8080) == "http://localhost:8080"


def test_port_80_is_left_out_and_ipv6_addresses_are_bracketed():
    assert base_url("0.0.0.0", 80) == "http://localhost"
    assert base_url("192.0.2.7", 6320) == "http://192.0.2.7:6320"
    assert base_url("::1", 6320) == "http://[::1]:6320"
    assert base_url("print.example.org", 80) == "http://print.example.org"
