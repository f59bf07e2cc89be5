"""The login throttle counts failures in the shared database: every process sees the same count."""
from __future__ import annotations

from adapters.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_block_the_login_for_the_window_across_throttles(runtime):
    clock = Clock()
    one, other = (LoginThrottle(runtime.writer, clock=clock) for _ in range(2))  # two worker processes
    for i in range(5):
        assert one.retry_after("Bob", "10.0.0.1") == 0
        (one if i % 2 else other).failed("bob", "10.0.0.1")
    assert other.retry_after("BOB", "10.0.0.2") == 901
    assert one.retry_after("alice", "10.0.0.1") == 0  # the address has 5 of its 20
    clock.now += 600
    assert one.retry_after("bob", "10.0.0.3") == 301
    clock.now += 301
    assert one.retry_after("bob", "10.0.0.3") == 0


def test_twenty_failures_from_one_address_block_it_and_success_clears_the_login(runtime):
    clock = Clock()
    throttle = LoginThrottle(runtime.writer, clock=clock)
    for i in range(20):
        throttle.failed(f"user{i}", "10.9.9.9")
    assert throttle.retry_after("someone", "10.9.9.9") > 0
    assert throttle.retry_after("someone", "10.9.9.8") == 0
    throttle.failed("carol", "10.0.0.1")
    throttle.succeeded("carol")
    for _ in range(4):
        throttle.failed("carol", "10.0.0.1")
    assert throttle.retry_after("carol", "10.0.0.1") == 0  # 4 since the success


# --- Concurrent guesses (issue 14): checking the count and counting the attempt are one step ---

import threading  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import falcon.testing  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from api.app import create_app  # noqa: E402
from commands.logins import LogIn  # noqa: E402
from projections.login_audit import login_audit  # noqa: E402


class CountingDirectory:
    """The real LocalDirectory, counting how many passwords it was asked to check."""

    def __init__(self, real) -> None:
        self.real = real
        self.source = real.source
        self.calls = 0
        self._lock = threading.Lock()

    def authenticate(self, login, password):
        with self._lock:
            self.calls += 1
        return self.real.authenticate(login, password)


def _guess_at_once(runtime, attempts: list[tuple[str, str]]):
    directory = CountingDirectory(runtime.local_directory())
    log_in = LogIn(runtime.app, lambda: directory, runtime.licensing, runtime.throttle, runtime.clock)
    start = threading.Barrier(len(attempts), timeout=30)

    def guess(attempt):
        start.wait()
        return log_in(login=attempt[0], password="wrong-guess-1", remote_addr=attempt[1]).outcome

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        outcomes = list(pool.map(guess, attempts, timeout=60))
    return directory.calls, outcomes


def test_a_hundred_guesses_at_once_get_at_most_five_checked_against_the_directory(runtime):
    runtime.add_local_user(login="kim", password="kim-pw-4567", role="user", profile={})
    calls, outcomes = _guess_at_once(runtime, [("kim", f"10.1.0.{i}") for i in range(100)])
    assert calls == 5, outcomes
    assert (outcomes.count("bad_credentials"), outcomes.count("throttled")) == (5, 95)
    # The right password is throttled too now, and nothing was left half-counted.
    assert runtime.log_in(login="kim", password="kim-pw-4567", remote_addr="10.2.0.1").outcome == "throttled"


def test_a_hundred_logins_at_once_from_one_address_get_at_most_twenty_checked(runtime):
    calls, outcomes = _guess_at_once(runtime, [(f"user{i}", "10.3.0.1") for i in range(100)])
    assert calls == 20 and outcomes.count("throttled") == 80


def test_a_right_password_or_an_unreachable_directory_does_not_count_as_a_failure(runtime):
    from adapters.directory import DirectoryError

    runtime.add_local_user(login="ann", password="ann-pw-4567", role="admin", profile={})
    for _ in range(10):
        assert runtime.log_in(login="ann", password="ann-pw-4567", remote_addr="10.4.0.1").ok

    class Down:
        source = "local"

        def authenticate(self, login, password):
            raise DirectoryError("cannot reach ldap.example.org")

    down = LogIn(runtime.app, lambda: Down(), runtime.licensing, runtime.throttle, runtime.clock)
    for _ in range(10):
        assert down(login="ann", password="x", remote_addr="10.4.0.1").outcome == "not_allowed"
    assert runtime.throttle.retry_after("ann", "10.4.0.1") == 0


# --- Behind a reverse proxy: X-Forwarded-For, believed only from the proxies in the settings ---

def _client(runtime, trusted_proxies: str) -> falcon.testing.TestClient:
    from dataclasses import replace

    runtime.settings = replace(runtime.settings, trusted_proxies=trusted_proxies)
    runtime.__dict__.pop("client_address", None)
    return falcon.testing.TestClient(create_app(runtime))


def _login(client, login: str, forwarded_for: str | None, peer: str = "127.0.0.1"):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.simulate_post("/Authentication/Login", json={"login": login, "password": "wrong-pw-1"},
                                headers=headers, remote_addr=peer)


def test_behind_a_trusted_proxy_one_client_is_throttled_not_everyone_behind_it(runtime):
    client = _client(runtime, "127.0.0.1, 10.8.0.0/16")
    for i in range(20):  # the proxy 10.8.0.5 appended the client; the client wrote the rest itself
        assert _login(client, f"guess{i}", f"1.2.3.{i}, 203.0.113.7, 10.8.0.5").status_code == 401
    assert _login(client, "guess99", "9.9.9.9, 203.0.113.7, 10.8.0.5").status_code == 429
    assert _login(client, "someone", "203.0.113.8, 10.8.0.5").status_code == 401  # the office next door
    # An untrusted peer's header is not believed: it is throttled as itself.
    assert _login(client, "other", "203.0.113.7", peer="192.0.2.1").status_code == 401
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        audited = conn.execute(sa.select(login_audit.c.login, login_audit.c.remote_addr)).all()
    assert ("guess0", "203.0.113.7") in audited and ("someone", "203.0.113.8") in audited
    assert ("other", "192.0.2.1") in audited


def test_without_trusted_proxies_the_forwarded_for_header_is_ignored(runtime):
    client = _client(runtime, "")
    for i in range(20):
        assert _login(client, f"guess{i}", f"198.51.100.{i}").status_code == 401  # a client cannot pick its key
    assert _login(client, "next", "198.51.100.200").status_code == 429
