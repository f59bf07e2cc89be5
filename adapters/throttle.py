"""The login throttle: failed logins counted per login and per client address, in the database.

Failures are counted in a table of the shared database, so every worker process and every
node of a cluster counts the same attempts: an in-memory counter would give a guesser one
allowance per process. The table is the throttle's own working state, written only here, and
not a read model: nothing is derived from it, and the audit trail is the LoginAttempt events.
"""
from __future__ import annotations

import time
from typing import Callable

import sqlalchemy as sa

# The throttle's own schema, beside the read models' (migrations/ creates both).
metadata = sa.MetaData()

# One row per failed attempt and key ("l:<login>", "a:<address>"), pruned after the window.
login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # Unix seconds
    sa.Index("ix_login_failures_key_at", "key", "at"),
    sa.Index("ix_login_failures_at", "at"),
)


class LoginThrottle:
    """At most `per_login` failures per login and `per_address` per client in `window` seconds."""

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
