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


def test_https_leaves_out_port_443():
    assert base_url("0.0.0.0", 443, "https") == "https://localhost"
    assert base_url("0.0.0.0", 6321, "https") == "https://localhost:6321"


def test_https_is_chosen_automatically_only_with_an_automatic_http_port():
    from pageledger.server import choose_https_port
    from pageledger.settings import Settings

    s = Settings.load(environ={})
    assert choose_https_port(s, None, http_port_automatic=False) is None  # --port given: never a guessed 6321
    assert choose_https_port(s, 7443, http_port_automatic=False) == 7443
    assert choose_https_port(s, -1, http_port_automatic=True) is None
    assert choose_https_port(Settings.load(environ={"PAGELEDGER_HTTPS_PORT": "8443"}), None, False) == 8443
