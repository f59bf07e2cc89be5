"""Web sessions: signed cookies, checked without a database.

A session is a signed cookie (HMAC-SHA256 with the installation's session secret): who, which
role, until when, and the session's CSRF token. Nothing is written per login besides the
audit event, so any node of a cluster that shares the data directory's secret can check it.
Cookies are Secure, HttpOnly and SameSite=Strict; a form that changes something must also
carry the CSRF token (double submit), which a cross-site page cannot read.
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
