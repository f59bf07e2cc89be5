"""`pageledger users sync` and `pageledger licence ...` as an admin runs them."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from adapters.directory import AttributeMap, LdapConfig
from adapters.directory_config import ldap_config_to_dict
from adapters.licence_keys import decode_key, this_host
from slapd_harness import CONTRACTORS, SERVICE_DN, SERVICE_PASSWORD, STAFF
from tests.conftest import ROOT
from tools.licence_issuer import issue_key, issue_licence, make_key_pair


def run(tmp_path, *args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    environ.update({"PAGELEDGER_DATA_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)}, **(env or {}))
    return subprocess.run([sys.executable, "-m", "pageledger.cli", *args], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=120)


def create_database(tmp_path):
    created = run(tmp_path, "db", "create")
    assert created.returncode == 0, created.stderr


@pytest.mark.ldap
def test_users_sync_from_the_configured_directory(tmp_path, slapd_server):
    config = LdapConfig(host="127.0.0.1", port=slapd_server.port, base_dns=(STAFF, CONTRACTORS), bind_dn=SERVICE_DN,
                        bind_password=SERVICE_PASSWORD, attributes=AttributeMap(card="employeeNumber"))
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "directory.json").write_text(json.dumps({"type": "ldap", "ldap": ldap_config_to_dict(config)}))
    create_database(tmp_path)
    done = run(tmp_path, "users", "sync", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["imported"]) == 5 and report["clashes"] == [
        "card 1002 is claimed by bob, dave: not assigned to anyone new"]
    assert SERVICE_PASSWORD not in done.stdout + done.stderr
    listed = run(tmp_path, "users", "list").stdout
    assert "Alice Archer" in listed and "o(dd)*name" in listed
    again = run(tmp_path, "users", "sync")
    assert again.stdout.startswith("0 imported, 0 updated, 0 deactivated")


def test_a_broken_directory_is_reported_and_nothing_imported(tmp_path):
    config = LdapConfig(host="127.0.0.1", port=9, base_dns=(STAFF,), timeout=2)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "directory.json").write_text(json.dumps({"type": "ldap", "ldap": ldap_config_to_dict(config)}))
    create_database(tmp_path)
    done = run(tmp_path, "users", "sync")
    assert done.returncode == 1 and "cannot reach 127.0.0.1:9" in done.stderr


def test_licence_activation_by_file_and_settings(tmp_path):
    issuer = make_key_pair()
    env = {"PAGELEDGER_LICENCE_PUBLIC_KEY": base64.b64encode(issuer.public_key().public_bytes_raw()).decode()}
    key = issue_key(issuer, type="analysis", seats=40, expires_at=0, company="Acme")
    here = this_host()
    good = tmp_path / "good.licence"
    good.write_text(issue_licence(issuer, decode_key(key, issuer.public_key()), host=here.host, mac=here.mac,
                                  method="file", issued_at=0))
    other = tmp_path / "other.licence"
    other.write_text(issue_licence(issuer, decode_key(key, issuer.public_key()), host="elsewhere", mac=here.mac,
                                   method="file", issued_at=0))
    create_database(tmp_path)
    assert json.loads(run(tmp_path, "licence", "show", env=env).stdout)["licence"] is None
    refused = run(tmp_path, "licence", "activate", "--file", str(other), "--company", "Acme", env=env)
    assert refused.returncode == 1 and "issued for host 'elsewhere'" in refused.stderr
    done = run(tmp_path, "licence", "activate", "--file", str(good), "--company", "Acme", env=env)
    assert done.returncode == 0, done.stderr
    assert run(tmp_path, "licence", "track-unlicensed", "on", env=env).returncode == 0
    shown = json.loads(run(tmp_path, "licence", "show", env=env).stdout)
    assert shown["licence"]["type"] == "analysis" and shown["licence"]["seats_allowed"] == 40
    assert shown["licence"]["track_unlicensed"] is True and shown["server"]["mac"] == here.mac
    assert run(tmp_path, "notices", "send", env=env).returncode == 1  # no admin e-mails configured


def test_online_activation_through_the_reference_service_on_loopback(tmp_path):
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from tools.activation_service import create_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    create_database(tmp_path)
    issuer = make_key_pair()
    service = make_server("127.0.0.1", 0, create_app(issuer, tmp_path / "registry.json"), handler_class=Quiet)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    try:
        env = {"PAGELEDGER_LICENCE_PUBLIC_KEY": base64.b64encode(issuer.public_key().public_bytes_raw()).decode(),
               "PAGELEDGER_ACTIVATION_URL": f"http://127.0.0.1:{service.server_port}"}
        key = issue_key(issuer, type="suite", seats=12, expires_at=0, company="Acme Ltd")
        wrong = run(tmp_path, "licence", "activate", "--key", key, "--company", "Globex", env=env)
        assert wrong.returncode == 1 and "sold to another company" in wrong.stderr
        done = run(tmp_path, "licence", "activate", "--key", key, "--company", "acme ltd", env=env)
        assert done.returncode == 0, done.stderr
        assert "activated (online): suite, 12 seats" in done.stdout
        shown = json.loads(run(tmp_path, "licence", "show", env=env).stdout)["licence"]
        assert (shown["activation_method"], shown["seats_allowed"], shown["company"]) == ("online", 12, "Acme Ltd")
        assert json.loads((tmp_path / "registry.json").read_text())  # the service remembers the activation
    finally:
        service.shutdown()
        service.server_close()
