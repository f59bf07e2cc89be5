"""Sessions ended before their time: logout writes the session's id here, and every request
on a session cookie is checked against it.

Session cookies are signed, not stored (adapters.sessions), so without this a copied cookie
would stay good until it expires even after its owner logged out. The table is this adapter's
own working state, shared by every worker and node through the database, and not a read model:
a row lives until the session would have expired anyway, then it is pruned.
(A user set Inactive is refused by api.auth from the users read model: no row needed.)
"""
from __future__ import annotations

import time
from typing import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

revoked_sessions = sa.Table(
    "revoked_sessions", metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("expires", sa.BigInteger, nullable=False),  # Unix seconds: the cookie's own end
    sa.Index("ix_revoked_sessions_expires", "expires"),
)


class SessionRevocations:
    def __init__(self, writer: sa.Engine, reader: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        self.writer = writer
        self.reader = reader
        self.clock = clock

    def revoke(self, session_id: str, expires: int) -> None:
        now = int(self.clock())
        with self.writer.begin() as conn:
            found = conn.execute(sa.select(revoked_sessions.c.session_id)
                                 .where(revoked_sessions.c.session_id == session_id)).first()
            if found is None:
                conn.execute(revoked_sessions.insert().values(session_id=session_id, expires=int(expires)))
            conn.execute(revoked_sessions.delete().where(revoked_sessions.c.expires <= now))

    def is_revoked(self, session_id: str) -> bool:
        with self.reader.connect() as conn:
            return conn.execute(sa.select(revoked_sessions.c.session_id)
                                .where(revoked_sessions.c.session_id == session_id)).first() is not None
