"""Access tokens by secret hash: what the API's authentication looks up."""
from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

import sqlalchemy as sa

from domain.tokens import AccessToken
from pageledger.codec import short_topic
from projections.follower import Projection
from projections.tables import access_tokens


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
