"""Issue and revoke bearer tokens (agents, admins, users)."""
from __future__ import annotations

import hashlib
import secrets
from uuid import UUID, uuid4

from commands.application import PageLedger
from domain.tokens import AccessToken

TOKEN_PREFIX = "plt_"


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def issue_token(app: PageLedger, *, name: str, role: str, subject: str = "") -> tuple[UUID, str]:
    """Returns the token's id and its secret. The secret is not stored; show it once."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken.issue(uuid4(), name=name, role=role, subject=subject or name,
                              secret_hash=hash_secret(secret))
    app.save(token)
    return token.id, secret


def revoke_token(app: PageLedger, token_id: UUID) -> None:
    token: AccessToken = app.repository.get(token_id)
    token.revoke()
    app.save(token)
