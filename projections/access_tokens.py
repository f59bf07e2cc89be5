"""Access tokens by secret hash: what the API's authentication looks up."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence
from uuid import UUID

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.tokens import AccessToken
from projections.follower import Projection, metadata

access_tokens = sa.Table(
    "access_tokens", metadata,
    sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("token_id", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("issued_at", sa.BigInteger, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
)


class AccessTokensProjection(Projection):
    name = "access_tokens"
    topics = (short_topic(AccessToken.Issued), short_topic(AccessToken.Revoked))
    tables = (access_tokens,)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        for _, e in events:
            if e.event_class is AccessToken.Issued:
                conn.execute(access_tokens.insert().values(
                    token_hash=e.secret_hash, token_id=str(UUID(str(e.originator_id))), name=e.name, role=e.role,
                    subject=e.subject, issued_at=e.timestamp, revoked=False))
            elif e.event_class is AccessToken.Revoked:
                conn.execute(access_tokens.update()
                             .where(access_tokens.c.token_id == str(UUID(str(e.originator_id)))).values(revoked=True))


# --- queries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    name: str
    role: str
    subject: str
    revoked: bool


def _record(row: Any) -> TokenRecord:
    return TokenRecord(row["token_id"], row["name"], row["role"], row["subject"], bool(row["revoked"]))


def find_token(conn: sa.Connection, token_hash: bytes) -> TokenRecord | None:
    row = conn.execute(sa.select(access_tokens).where(access_tokens.c.token_hash == token_hash)).mappings().first()
    return None if row is None else _record(row)


def tokens_of_subject(conn: sa.Connection, subject: str) -> list[str]:
    """The ids of the tokens, not revoked, that act for `subject`."""
    return [t for (t,) in conn.execute(sa.select(access_tokens.c.token_id).where(access_tokens.c.subject == subject)
                                       .where(access_tokens.c.revoked.is_(False)))]


def list_tokens(conn: sa.Connection) -> list[TokenRecord]:
    return [_record(r) for r in conn.execute(sa.select(access_tokens).order_by(access_tokens.c.issued_at)).mappings()]
