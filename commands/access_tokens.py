"""Issue and revoke bearer tokens (agents, admins, users)."""
from __future__ import annotations

import hashlib
import secrets
from uuid import UUID, uuid4

from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from domain.tokens import AccessToken

TOKEN_PREFIX = "plt_"


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class IssueToken:
    """Issue a bearer token. Returns its id and its secret: the secret is not stored (only its
    SHA-256), so it is shown once."""

    def __init__(self, app: PageLedger) -> None:
        self.app = app

    def __call__(self, *, name: str, role: str, subject: str = "") -> tuple[UUID, str]:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = AccessToken.issue(uuid4(), name=name, role=role, subject=subject or name,
                                  secret_hash=hash_secret(secret))
        self.app.save(token)
        return token.id, secret


class RevokeToken:
    def __init__(self, app: PageLedger) -> None:
        self.app = app

    def __call__(self, token_id: UUID) -> None:
        """Raises eventsourcing's AggregateNotFoundError for an unknown id."""
        def attempt() -> None:
            token: AccessToken = self.app.repository.get(token_id)
            token.revoke()
            self.app.save(token)

        retry_on_conflict(attempt, what=f"revoke token {token_id}")
