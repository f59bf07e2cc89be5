"""The online activation flow over loopback HTTP, and the issuer CLI as a subprocess."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from domain.licence import SUITE
from domain.units import MICROS_PER_DAY
from adapters.licence_keys import (
    ActivationServiceError, HostIdentity, decode_key, fetch_online_licence, load_public_key,
    verify_licence,
)
from tools.activation_service import create_app
from tools.licence_issuer import issue_key, make_key_pair

NOW = 1_764_000_000 * 1_000_000
HERE = HostIdentity(host="printsrv1", mac="00:11:22:33:44:55")
REPO = Path(__file__).resolve().parents[2]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def service(tmp_path):
    issuer = make_key_pair()
    server = make_server("127.0.0.1", 0, create_app(issuer, tmp_path / "registry.json", clock=lambda: NOW),
                         handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield issuer, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_online_activation_returns_a_licence_for_this_server(service):
    issuer, url = service
    key = issue_key(issuer, type=SUITE, seats=30, expires_at=NOW + 30 * MICROS_PER_DAY, company="Acme Ltd")
    document = fetch_online_licence(url, key=key, company="acme ltd", identity=HERE)
    licence = verify_licence(document, issuer.public_key(), company="acme ltd", identity=HERE, now=NOW)
    assert (licence.seats, licence.method, licence.host, licence.mac) == (30, "online", "printsrv1", HERE.mac)
    # Re-activating the same server is allowed (a reinstall).
    fetch_online_licence(url, key=key, company="Acme Ltd", identity=HERE)


def test_the_service_refuses_a_wrong_company_a_forged_key_and_a_second_server(service):
    issuer, url = service
    key = issue_key(issuer, type=SUITE, seats=30, expires_at=0, company="Acme Ltd")
    with pytest.raises(ActivationServiceError, match=r"\(403\): the company name does not match"):
        fetch_online_licence(url, key=key, company="Globex", identity=HERE)
    forged = issue_key(make_key_pair(), type=SUITE, seats=30, expires_at=0, company="Acme Ltd")
    with pytest.raises(ActivationServiceError, match=r"\(400\): the licence key is not valid"):
        fetch_online_licence(url, key=forged, company="Acme Ltd", identity=HERE)
    fetch_online_licence(url, key=key, company="Acme Ltd", identity=HERE)
    with pytest.raises(ActivationServiceError, match=r"\(409\): this key is already activated on another server"):
        fetch_online_licence(url, key=key, company="Acme Ltd", identity=HostIdentity("other", "00:00:00:00:00:01"))


def test_the_service_names_every_missing_field(service):
    import json
    import urllib.error
    import urllib.request
    _, url = service
    request = urllib.request.Request(url + "/activate", data=b'{"key": "", "host": 5}', method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert set(json.loads(caught.value.read())["errors"]) == {"key", "company", "host", "mac"}


def test_an_unreachable_service_is_reported_as_such():
    with pytest.raises(ActivationServiceError, match="could not be reached"):
        fetch_online_licence("http://127.0.0.1:9", key="PL1-X", company="A", identity=HERE, timeout=2)


def test_the_issuer_cli_makes_keys_issues_a_key_and_a_file_the_server_accepts(tmp_path):
    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "tools.licence_issuer", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    cli("make-keys", "--out", str(tmp_path))
    assert (tmp_path / "issuer.key").stat().st_mode & 0o777 == 0o600
    key = cli("issue-key", "--private-key", str(tmp_path / "issuer.key"), "--type", "analysis",
              "--seats", "12", "--expires", "2099-01-01", "--company", "Acme Ltd")
    public = load_public_key((tmp_path / "issuer.pub").read_bytes())
    assert decode_key(key, public).seats == 12
    cli("issue-file", "--private-key", str(tmp_path / "issuer.key"), "--key", key, "--company", "Acme Ltd",
        "--host", HERE.host, "--mac", HERE.mac, "--out", str(tmp_path / "acme.licence"))
    licence = verify_licence((tmp_path / "acme.licence").read_text(), public, company="Acme Ltd",
                             identity=HERE, now=NOW)
    assert (licence.type, licence.seats, licence.method) == ("analysis", 12, "file")
    wrong = subprocess.run([sys.executable, "-m", "tools.licence_issuer", "issue-file", "--private-key",
                            str(tmp_path / "issuer.key"), "--key", key, "--company", "Globex", "--host", "h",
                            "--mac", "m", "--out", str(tmp_path / "x")], cwd=REPO, capture_output=True, text=True)
    assert wrong.returncode == 2 and "sold to 'Acme Ltd'" in wrong.stderr
