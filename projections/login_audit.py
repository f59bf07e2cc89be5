"""The login audit read model: every attempt to log in, newest last, by login and time."""
from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.logins import LoginAttempt
from projections.follower import Projection, metadata

login_audit = sa.Table(
    "login_audit", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("login", sa.String(255), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("remote_addr", sa.String(64), nullable=False),
    sa.Index("ix_login_audit_login_at", "login", "at"),
)


class LoginAuditProjection(Projection):
    name = "login_audit"
    topics = (short_topic(LoginAttempt.Recorded),)
    tables = (login_audit,)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        conn.execute(login_audit.insert(), [
            {"seq": seq, "at": e.at, "login": e.login, "outcome": e.outcome, "remote_addr": e.remote_addr}
            for seq, e in events])
