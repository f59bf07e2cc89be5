"""The login throttle: failed logins counted per login and per client address, in the database.

Failures are counted in a table of the shared database, so every worker process and every
node of a cluster counts the same attempts: an in-memory counter would give a guesser one
allowance per process. The table is the throttle's own working state, written only here, and
not a read model: nothing is derived from it, and the audit trail is the LoginAttempt events.

An attempt is counted before its password is checked (`reserve`): the count and the new
rows are one transaction, serialised per key (SQLite: the writer engine's BEGIN IMMEDIATE;
PostgreSQL: a transaction advisory lock on each key), so a hundred guesses sent at once are
a hundred turns of the same counter, not a hundred reads of the same "4 so far". A
reservation left in place is a failure; a right password or an unreachable directory
releases it.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
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


# The first half of PostgreSQL's two-key advisory locks: the throttle's keys, apart from any other.
THROTTLE_LOCK_CLASS = zlib.crc32(b"pageledger-login-throttle") & 0x7FFFFFFF


@dataclass(frozen=True)
class Reservation:
    """One attempt's turn: `retry_after` > 0 if refused, else the rows that count it."""

    retry_after: int
    row_ids: tuple[int, ...] = ()


class LoginThrottle:
    """At most `per_login` failures per login and `per_address` per client in `window` seconds."""

    def __init__(self, engine: sa.Engine, per_login: int = 5, per_address: int = 20, window: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.per_login = per_login
        self.per_address = per_address
        self.window = window
        self.clock = clock

    def reserve(self, login: str, address: str) -> Reservation:
        """Count this attempt as a failure now, unless the limit is reached (then say how long
        to wait and count nothing): check and count in one serialised step."""
        now = self.clock()
        keys = {throttle_key("l", login): self.per_login, throttle_key("a", address): self.per_address}
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                for key in sorted(keys):  # always in the same order: two logins never deadlock
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(THROTTLE_LOCK_CLASS,
                                                                         sa.func.hashtext(key))))
            wait = self._wait(conn, keys, now)
            if wait:
                return Reservation(wait)
            ids = tuple(conn.execute(login_failures.insert().values(key=key, at=now)).inserted_primary_key[0]
                        for key in keys)
            conn.execute(login_failures.delete().where(login_failures.c.at <= now - self.window))
        return Reservation(0, ids)

    def release(self, reservation: Reservation) -> None:
        """The attempt was not a wrong password (right one, or the directory was unreachable)."""
        if reservation.row_ids:
            with self.engine.begin() as conn:
                conn.execute(login_failures.delete().where(login_failures.c.id.in_(reservation.row_ids)))

    def retry_after(self, login: str, address: str) -> int:
        """Seconds until another attempt is allowed; 0 = allowed now (a look, not a reservation)."""
        with self.engine.connect() as conn:
            return self._wait(conn, {throttle_key("l", login): self.per_login,
                                     throttle_key("a", address): self.per_address}, self.clock())

    def _wait(self, conn: sa.Connection, limits: dict[str, int], now: float) -> int:
        waits = []
        for key, limit in limits.items():
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
            conn.execute(login_failures.insert(), [{"key": throttle_key("l", login), "at": now},
                                                   {"key": throttle_key("a", address), "at": now}])
            conn.execute(login_failures.delete().where(login_failures.c.at <= now - self.window))

    def succeeded(self, login: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(login_failures.delete().where(login_failures.c.key == throttle_key("l", login)))


RELEASE_CODE_PREFIX = "release-code:"  # wrong release codes are counted under this prefix and the login


def forget_login(conn: sa.Connection, login: str) -> int:
    """Delete the failures counted against `login` (passwords and release codes), and the
    address rows recorded with them (the same attempt, the same instant): erasing a person
    (projections.erasure) leaves nothing here that names them or where they were. How many
    rows went."""
    keys = [throttle_key("l", login), throttle_key("l", RELEASE_CODE_PREFIX + login)]
    ats = [at for (at,) in conn.execute(sa.select(login_failures.c.at).where(login_failures.c.key.in_(keys)))]
    gone = conn.execute(login_failures.delete().where(login_failures.c.key.in_(keys))).rowcount
    for i in range(0, len(ats), 500):
        gone += conn.execute(login_failures.delete().where(login_failures.c.key.like("a:%"),
                                                           login_failures.c.at.in_(ats[i:i + 500]))).rowcount
    return gone


def throttle_key(kind: str, value: str) -> str:
    """The key failures are counted under: "l" and a login, or "a" and a client address."""
    return f"{kind}:{value.strip().lower()}"[:300]
