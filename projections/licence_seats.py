"""The licence read model: the terms in force, who holds a seat, and who was denied one (for
the daily notice), with the queries of Administration -> Settings -> Licensing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.licence import Licence
from domain.logins import NO_SEAT, LoginAttempt
from domain.units import day_of
from projections.follower import Projection, metadata
from projections.sql import insert_ignoring_existing

# One row: the licence in force.
licence_state = sa.Table(
    "licence_state", metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("seats", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),  # 0 = never
    sa.Column("installed_at", sa.BigInteger, nullable=False),
    sa.Column("activated_at", sa.BigInteger, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("company", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("track_unlicensed", sa.Boolean, nullable=False),
)

licence_seats = sa.Table(
    "licence_seats", metadata,
    sa.Column("login_key", sa.String(255), primary_key=True),
    sa.Column("assigned_at", sa.BigInteger, nullable=False),
)

seat_denials = sa.Table(
    "seat_denials", metadata,
    sa.Column("day", sa.Integer, primary_key=True),  # days since 1970-01-01 UTC, domain.units.day_of
    sa.Column("login_key", sa.String(255), primary_key=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
)

_TOPICS = (Licence.Installed, Licence.Activated, Licence.SeatAssigned, Licence.SeatReleased, Licence.SeatDenied,
           Licence.UnlicensedTrackingChanged, LoginAttempt.Recorded)


class LicenceSeatsProjection(Projection):
    name = "licence_seats"
    topics = tuple(short_topic(t) for t in _TOPICS)
    tables = (licence_state, licence_seats, seat_denials)
    # seat_denials: a user's first refusal (the licence records it once, until they get a seat
    # or new terms are activated) and refused logins, one row per user and day. Denied jobs
    # are in the jobs table; the licence's SeatDenied already names their users.

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        for _, e in events:
            if e.event_class is Licence.Installed:
                conn.execute(licence_state.delete())
                conn.execute(licence_state.insert().values(
                    id=1, type=e.type, seats=e.seats, expires_at=e.expires_at, installed_at=e.installed_at,
                    activated_at=0, method="", company="", host="", track_unlicensed=False))
            elif e.event_class is Licence.Activated:
                conn.execute(licence_state.update().values(
                    type=e.type, seats=e.seats, expires_at=e.expires_at, activated_at=e.at, method=e.method,
                    company=e.company, host=e.host))
            elif e.event_class is Licence.UnlicensedTrackingChanged:
                conn.execute(licence_state.update().values(track_unlicensed=e.enabled))
            elif e.event_class is Licence.SeatAssigned:
                insert_ignoring_existing(conn, licence_seats, [{"login_key": e.user, "assigned_at": e.at}])
            elif e.event_class is Licence.SeatReleased:
                conn.execute(licence_seats.delete().where(licence_seats.c.login_key == e.user))
            elif e.event_class is Licence.SeatDenied:
                _denied(conn, e.user, e.reason, e.at)
            elif e.event_class is LoginAttempt.Recorded and e.outcome == NO_SEAT:
                _denied(conn, e.login.lower(), "login", e.at)


def _denied(conn: sa.Connection, login_key: str, reason: str, at: int) -> None:
    """One row per user and day, whatever was refused first (seat, job, login)."""
    insert_ignoring_existing(conn, seat_denials, [{"day": day_of(at), "login_key": login_key[:255],
                                                  "reason": reason, "at": at}])


# --- queries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class LicenceSummary:
    """The licence in force, as the read model holds it (times in µs, 0 = never/none)."""

    type: str
    valid: bool
    expires_at: int
    seats_allowed: int
    seats_used: int
    activated: bool
    activation_method: str
    company: str
    track_unlicensed: bool


def licence_summary(conn: sa.Connection, now: int) -> LicenceSummary | None:
    """The licence in force at `now`; None before setup."""
    row = conn.execute(sa.select(licence_state)).mappings().first()
    if row is None:
        return None
    used = conn.execute(sa.select(sa.func.count()).select_from(licence_seats)).scalar_one()
    return LicenceSummary(type=row["type"], valid=not row["expires_at"] or now < row["expires_at"],
                          expires_at=row["expires_at"], seats_allowed=row["seats"], seats_used=int(used),
                          activated=bool(row["activated_at"]), activation_method=row["method"],
                          company=row["company"], track_unlicensed=bool(row["track_unlicensed"]))


def denied_since(conn: sa.Connection, since: int) -> list[str]:
    """Logins denied a seat after `since` (µs), each once."""
    return [r.login_key for r in conn.execute(
        sa.select(seat_denials.c.login_key).where(seat_denials.c.at > since).distinct()
        .order_by(seat_denials.c.login_key))]
