"""The setup wizard needs the one-time setup code printed at the first start, and its connection
test reaches only LDAP ports, briefly, answering the same for every kind of failure."""
from __future__ import annotations

import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import free_port, make_live_server


class Listener:
    """A loopback port that accepts and then says nothing (not LDAP), counting connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        held = []
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            held.append(conn)
        for conn in held:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def listener():
    one = Listener()
    yield one
    one.close()


@pytest.fixture
def server(tmp_path, listener):
    closed = free_port()
    live = make_live_server(tmp_path, PAGELEDGER_SETUP_LDAP_PORTS=f"389,{listener.port},{closed}",
                            PAGELEDGER_SETUP_LDAP_TIMEOUT="1")
    live.closed_port = closed
    live.start()
    yield live
    live.stop()


def events(server) -> int:
    return requests.get(server.url + "/healthz", timeout=30).json()["events"]


def ldap_test(server, port: int, **extra) -> dict:
    return {"action": "test", "network_type": "ldap", "ldap_host": "127.0.0.1", "ldap_port": port,
            "ldap_base_dns": "dc=example,dc=org", "ldap_bind_dn": "cn=svc,dc=example,dc=org",
            "ldap_bind_password": "secret-pw", **extra}


LOCAL_ADMIN = {"network_type": "local", "licence_mode": "trial", "admin_login": "root", "admin_password": "root-pw-123"}


def test_the_wizard_needs_the_setup_code_and_nothing_happens_without_it(server, listener):
    url, code_file = server.url + "/Setup/NetworkSetup", server.workdir / "var" / "setup-code"
    assert len(server.setup_code) == 32 and stat.S_IMODE(code_file.stat().st_mode) == 0o600
    assert server.setup_code in (server.workdir / "server.log").read_text()  # printed on the console

    # The page: 403 without the code (a browser is asked for it), the wizard with it.
    refused = requests.get(url, timeout=30)
    assert refused.status_code == 403 and refused.json()["title"] == "Setup code required"
    assert "setup-code" in refused.json()["description"]
    browser = requests.get(url, headers={"Accept": "text/html"}, timeout=30)
    assert browser.status_code == 403 and 'name="setup_code"' in browser.text and "Step 3" not in browser.text
    assert requests.get(url, params={"setup_code": "0" * 32}, timeout=30).status_code == 403
    page = requests.get(url, params={"setup_code": server.setup_code}, timeout=30)
    assert page.status_code == 200 and "Step 3" in page.text and server.setup_code in page.text

    # Without the code nobody becomes admin, and the test action connects nowhere.
    before = events(server)
    for body in (LOCAL_ADMIN, {**LOCAL_ADMIN, "setup_code": "not-the-code"},
                 ldap_test(server, listener.port), ldap_test(server, listener.port, setup_code="")):
        r = requests.post(url, json=body, timeout=30)
        assert r.status_code == 403 and r.json()["title"].startswith("Setup code"), r.text
    form = requests.post(url, data={**LOCAL_ADMIN, "setup_code": "wrong"}, timeout=30)
    assert form.status_code == 403
    time.sleep(0.3)
    assert listener.accepted == 0 and events(server) == before
    assert not (server.workdir / "var" / "directory.json").exists()

    # With it: set up, and the code is used up.
    done = requests.post(url, json={**LOCAL_ADMIN, "setup_code": f" {server.setup_code.upper()} "}, timeout=30)
    assert done.status_code == 201, done.text
    assert not code_file.exists()
    assert requests.get(url, params={"setup_code": server.setup_code}, timeout=30).status_code == 410
    assert requests.post(url, json={**LOCAL_ADMIN, "setup_code": server.setup_code},
                         timeout=30).status_code == 410


def test_the_connection_test_reaches_only_ldap_ports_and_says_one_thing_for_any_failure(server, listener):
    url, code = server.url + "/Setup/NetworkSetup", server.setup_code
    ssh = requests.post(url, json=ldap_test(server, 22, setup_code=code), timeout=30)
    assert ssh.status_code == 400 and set(ssh.json()["errors"]) == {"ldap_port"}
    answers, seconds = [], []
    for port in (server.closed_port, listener.port):  # closed; open but silent (not LDAP)
        started = time.monotonic()
        r = requests.post(url, json=ldap_test(server, port, setup_code=code), timeout=30)
        seconds.append(time.monotonic() - started)
        answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1], answers
    assert answers[0][0] == 400 and answers[0][1]["errors"] == {
        "ldap": ["could not connect to an LDAP server at this host and port"]}
    assert listener.accepted >= 1 and seconds[1] < 5  # the setup_ldap_timeout of 1 s, not ldap3's 10 s


def test_the_setup_code_is_made_once_and_kept_across_restarts_until_setup(tmp_path):
    server = make_live_server(tmp_path)
    server.start()
    first = server.setup_code
    server.stop()
    server.start()
    try:
        assert server.setup_code == first
        with ThreadPoolExecutor(4) as pool:  # guessing in parallel gets nothing but 403s
            codes = list(pool.map(lambda i: requests.post(server.url + "/Setup/NetworkSetup", timeout=30, json={
                **LOCAL_ADMIN, "setup_code": f"{i:032x}"}).status_code, range(8)))
        assert codes == [403] * 8
    finally:
        server.stop()
