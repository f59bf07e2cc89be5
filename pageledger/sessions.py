"""Web sessions and login throttling.

A session is a signed cookie (HMAC-SHA256 with the installation's session secret): who, which
role, until when, and the session's CSRF token. Nothing is written per login besides the
audit event, so any node of a cluster that shares the data directory's secret can check it.
Cookies are Secure, HttpOnly and SameSite=Strict; a form that changes something must also
carry the CSRF token (double submit), which a cross-site page cannot read.

The throttle counts failed logins per login name and per client address in the shared
database, so all workers and nodes count together.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa

from projections.identity_tables import login_failures

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
    """At most `per_login` failures per login and `per_address` per client in `window` seconds.

    Failures are counted in a small table of the shared database (`login_failures`), so every
    worker process and every node of a cluster counts the same attempts: an in-memory counter
    would give a guesser one allowance per process. The table is the throttle's own working
    state, not a read model: nothing is derived from it, and the audit trail is the
    LoginAttempt events.
    """

    def __init__(self, engine: sa.Engine, per_login: int = 5, per_address: int = 20, window: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.per_login = per_login
        self.per_address = per_address
        self.window = window
        self.clock = clock

    def retry_after(self, login: str, address: str) -> int:
        """Seconds until another attempt is allowed; 0 = allowed now."""
        now = self.clock()
        waits = []
        with self.engine.connect() as conn:
            for key, limit in ((_key("l", login), self.per_login), (_key("a", address), self.per_address)):
                nth = conn.execute(
                    sa.select(login_failures.c.at).where(login_failures.c.key == key)
                    .where(login_failures.c.at > now - self.window)
                    .order_by(login_failures.c.at.desc()).limit(1).offset(limit - 1)).scalar()
                if nth is not None:
                    waits.append(nth + self.window - now)
        return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, login: str, address: str) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(login_failures.insert(), [{"key": _key("l", login), "at": now},
                                                   {"key": _key("a", address), "at": now}])
            conn.execute(login_failures.delete().where(login_failures.c.at <= now - self.window))

    def succeeded(self, login: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(login_failures.delete().where(login_failures.c.key == _key("l", login)))


def _key(kind: str, value: str) -> str:
    return f"{kind}:{value.strip().lower()}"[:300]
