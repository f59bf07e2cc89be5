"""Web sessions and login throttling.

A session is a signed cookie (HMAC-SHA256 with the installation's session secret): who, which
role, until when, and the session's CSRF token. Nothing is written per login besides the
audit event, so any node of a cluster that shares the data directory's secret can check it.
Cookies are Secure, HttpOnly and SameSite=Strict; a form that changes something must also
carry the CSRF token (double submit), which a cross-site page cannot read.

The throttle counts failed logins per login name and per client address, in memory: it
slows guessing on one node; each node of a cluster counts for itself.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

SESSION_COOKIE = "pl_session"
CSRF_COOKIE = "pl_csrf"  # before login: the login and setup forms' double-submit token


@dataclass(frozen=True)
class Session:
    session_id: str
    login: str
    role: str
    expires: int  # Unix seconds
    csrf: str


class SessionSigner:
    def __init__(self, secret: bytes, lifetime_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"pageledger-session\n" + secret).digest()
        self.lifetime = lifetime_seconds
        self.clock = clock

    def issue(self, login: str, role: str) -> tuple[str, Session]:
        session = Session(secrets.token_urlsafe(12), login, role, int(self.clock()) + self.lifetime,
                          secrets.token_urlsafe(24))
        payload = json.dumps([session.session_id, login, role, session.expires, session.csrf],
                             separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._sign(body)}", session

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, if it is ours, intact and not expired."""
        if not cookie or "." not in cookie:
            return None
        body, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            sid, login, role, expires, csrf = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, TypeError):
            return None
        if int(expires) <= self.clock():
            return None
        return Session(sid, login, role, int(expires), csrf)

    def _sign(self, body: str) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, body.encode(), hashlib.sha256).digest()).decode().rstrip("=")


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


class LoginThrottle:
    """At most `per_login` failures per login and `per_address` per client in `window` seconds."""

    def __init__(self, per_login: int = 5, per_address: int = 20, window: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_login = per_login
        self.per_address = per_address
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, login: str, address: str) -> int:
        """Seconds until another attempt is allowed; 0 = allowed now."""
        now = self.clock()
        with self._lock:
            waits = []
            for key, limit in (("l:" + login.lower(), self.per_login), ("a:" + address, self.per_address)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[-limit] + self.window - now)
            return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, login: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            for key in ("l:" + login.lower(), "a:" + address):
                self._recent(key, now).append(now)

    def succeeded(self, login: str) -> None:
        with self._lock:
            self._failures.pop("l:" + login.lower(), None)
