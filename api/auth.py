"""Authentication on every endpoint: bearer tokens looked up by their SHA-256.

Each resource declares `roles` (who may call it) or `public = True`, and may narrow one
method in `method_roles` (e.g. anyone in `roles` reads, only admins post). Users of role
"user" are bound to their own login (the token's subject) by the resources themselves.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import falcon
import sqlalchemy as sa

from commands.access_tokens import hash_secret
from adapters.session_revocations import SessionRevocations
from adapters.sessions import SESSION_COOKIE, SessionSigner, same_token
from projections.access_tokens import find_token
from domain.users import ROLE_USER
from projections.users import active_roles

CACHE_SECONDS = 5.0
FORM_TYPE = "application/x-www-form-urlencoded"


def allowed_roles(resource: object, method: str) -> tuple[str, ...]:
    """Who may call `method` (get, post, ...) of `resource`: the OpenAPI document says the same."""
    return tuple(getattr(resource, "method_roles", {}).get(method.lower(), getattr(resource, "roles", ())))


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: str
    subject: str
    csrf: str = ""  # a web session's CSRF token (the console's pages echo it)

    @property
    def author(self) -> str:
        """Who an admin change is recorded as made by: the login, or the token's name for an
        API token that acts for no one."""
        return self.subject or f"token {self.name}"


class TokenAuth:
    """Falcon middleware: puts the caller's Principal in req.context.principal, or refuses."""

    def __init__(self, reader: sa.Engine, sessions: SessionSigner | None = None,
                 revocations: SessionRevocations | None = None) -> None:
        self.reader = reader
        self.sessions = sessions  # web logins (cookie sessions), see adapters.sessions
        self.revocations = revocations  # sessions ended by logout
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}
        self._roles_cache: dict[str, tuple[float, frozenset[str] | None]] = {}

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        principal = self._principal(req, resource)
        roles = allowed_roles(resource, req.method)
        if principal.role not in roles:
            raise falcon.HTTPForbidden(title="Forbidden",
                                       description=f"role {principal.role!r} may not use this endpoint")
        req.context.principal = principal

    def _principal(self, req: falcon.Request, resource: object = None) -> Principal:
        header = req.get_header("Authorization") or ""
        if not header and self.sessions is not None and req.cookies.get(SESSION_COOKIE):
            return self._session_principal(req, resource)
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise falcon.HTTPUnauthorized(title="Authentication required",
                                          description="Send 'Authorization: Bearer <token>'.",
                                          challenges=["Bearer"])
        digest = hash_secret(secret.strip())
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is None or hit[0] < now:
            with self.reader.connect() as conn:
                record = find_token(conn, digest)
            principal = (Principal(record.token_id, record.name, record.role, record.subject)
                         if record and not record.revoked else None)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_SECONDS, principal)
        else:
            principal = hit[1]
        if principal is None:
            raise falcon.HTTPUnauthorized(title="Invalid token",
                                          description="The token is unknown or has been revoked.",
                                          challenges=["Bearer"])
        if principal.role == ROLE_USER and self._inactive(principal.subject):
            raise falcon.HTTPUnauthorized(title="Account inactive",
                                          description="The token's user was set Inactive or removed by an "
                                                      "administrator.", challenges=["Bearer"])
        return principal

    def _inactive(self, login: str) -> bool:
        """A `user` token acts as its subject: it stops with the account, as a session does
        (within the same few seconds of cache; never refused on a stale cache)."""
        roles = self._current_roles(login, fresh=False)
        if roles is not None and not roles:
            roles = self._current_roles(login, fresh=True)
        return roles is not None and not roles

    def _session_principal(self, req: falcon.Request, resource: object = None) -> Principal:
        """A web login's cookie. A request that changes something must echo its CSRF token
        (in X-CSRF-Token; a console form in its csrf_token field, checked by FormCsrf)."""
        session = self.sessions.read(req.cookies.get(SESSION_COOKIE))
        if session is None or (self.revocations is not None and self.revocations.is_revoked(session.session_id)):
            raise falcon.HTTPUnauthorized(title="Session expired", description="Log in again.",
                                          challenges=["Bearer"])
        if req.method not in ("GET", "HEAD", "OPTIONS") and not same_token(
                req.get_header("X-CSRF-Token"), session.csrf):
            if not (getattr(resource, "form_csrf", False) and (req.content_type or "").startswith(FORM_TYPE)):
                raise falcon.HTTPForbidden(title="CSRF token missing or wrong",
                                           description="Send the session's CSRF token in X-CSRF-Token.")
            # A console form: its csrf_token field is checked once RequestLimits has bounded the
            # body (api.console.forms.FormCsrf), before the resource sees it.
            req.context.csrf_expected = session.csrf
        refusal = self._refusal(session.login, session.role)
        if refusal is not None:
            refusal = self._refusal(session.login, session.role, fresh=True)  # never refused on a stale cache
        if refusal is not None:
            raise falcon.HTTPUnauthorized(title=refusal[0], description=refusal[1], challenges=["Bearer"])
        return Principal("session:" + session.session_id, session.login, session.role, session.login, session.csrf)

    def _refusal(self, login: str, role: str, fresh: bool = False) -> tuple[str, str] | None:
        """Why this session may no longer be used, or None. Sessions are signed, not stored: a
        user set Inactive, removed or given another role is stopped here, within seconds, by
        the users read model (a login it does not know yet is let through, as at first login)."""
        roles = self._current_roles(login, fresh)
        if roles is None or role in roles:
            return None
        if not roles:
            return "Account inactive", "An administrator set this account Inactive or removed it."
        return "Role changed", "This account's role changed since the session began: log in again."

    def _current_roles(self, login: str, fresh: bool) -> frozenset[str] | None:
        key = "session-user:" + login.lower()
        now = time.monotonic()
        hit = self._roles_cache.get(key)
        if fresh or hit is None or hit[0] < now:
            with self.reader.connect() as conn:
                found = active_roles(conn, login.lower())
            if len(self._roles_cache) > 10_000:
                self._roles_cache.clear()
            self._roles_cache[key] = hit = (now + CACHE_SECONDS, None if found is None else frozenset(found))
        return hit[1]
