"""AccessToken: a bearer credential for the API or an agent, issued and revoked as events.

Only the SHA-256 of the secret is ever stored; the secret itself is shown once, when issued.
"""
from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

ROLES = ("admin", "auditor", "user", "agent")


class AccessToken(Aggregate):
    @event("Issued")
    def __init__(self, name: str, role: str, subject: str, secret_hash: bytes) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        self.name = name
        self.role = role
        self.subject = subject
        self.secret_hash = secret_hash
        self.revoked = False

    @classmethod
    def issue(cls, token_id: UUID, *, name: str, role: str, subject: str, secret_hash: bytes) -> "AccessToken":
        return cls._create(cls.Issued, id=token_id, name=name, role=role, subject=subject,
                           secret_hash=secret_hash)

    @event("Revoked")
    def revoke(self) -> None:
        self.revoked = True
