"""Signed session cookies: what is accepted, and that tampering or age is refused."""
from __future__ import annotations

from adapters.sessions import SessionSigner, same_token


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_round_trips_and_expires():
    clock = Clock()
    signer = SessionSigner(b"k" * 32, lifetime_seconds=3600, clock=clock)
    cookie, session = signer.issue("alice", "user")
    assert signer.read(cookie) == session
    clock.now += 3601
    assert signer.read(cookie) is None


def test_a_changed_or_foreign_cookie_is_refused():
    signer = SessionSigner(b"k" * 32, lifetime_seconds=3600)
    cookie, _ = signer.issue("alice", "user")
    body, _, signature = cookie.rpartition(".")
    import base64
    import json
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields[2] = "admin"  # promote oneself
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=") + "." + signature
    assert signer.read(forged) is None
    assert SessionSigner(b"x" * 32, lifetime_seconds=3600).read(cookie) is None
    for junk in ("", "abc", "a.b", None):
        assert signer.read(junk) is None


def test_csrf_tokens_compare_only_when_both_are_present():
    assert same_token("abc", "abc")
    assert not same_token("", "")
    assert not same_token(None, "abc")
    assert not same_token("abc", "abd")
