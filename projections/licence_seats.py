"""The licence read models: terms in force, seat holders, denials (for the daily notice), logins."""
from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from domain.licence import DAY_US, Licence
from domain.logins import NO_SEAT
from domain.logins import LoginAttempt
from pageledger.codec import short_topic
from projections.follower import Projection
from projections.identity_tables import licence_seats, licence_state, login_audit, seat_denials
from projections.sql import insert_ignoring_existing

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
    insert_ignoring_existing(conn, seat_denials, [{"day": at // DAY_US, "login_key": login_key[:255],
                                                  "reason": reason, "at": at}])


class LoginAuditProjection(Projection):
    name = "login_audit"
    topics = (short_topic(LoginAttempt.Recorded),)
    tables = (login_audit,)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        conn.execute(login_audit.insert(), [
            {"seq": seq, "at": e.at, "login": e.login, "outcome": e.outcome, "remote_addr": e.remote_addr}
            for seq, e in events])


def licence_summary(conn: sa.Connection, now: int) -> dict[str, Any] | None:
    """What Administration -> Settings -> Licensing shows; None before setup."""
    from pageledger.licence_keys import _to_iso
    row = conn.execute(sa.select(licence_state)).mappings().first()
    if row is None:
        return None
    used = conn.execute(sa.select(sa.func.count()).select_from(licence_seats)).scalar_one()
    valid = not row["expires_at"] or now < row["expires_at"]
    return {
        "type": row["type"], "valid": valid, "status": "licensed" if valid else "unlicensed",
        "expires_at": _to_iso(row["expires_at"]), "seats_allowed": row["seats"], "seats_used": int(used),
        "activated": bool(row["activated_at"]), "activation_method": row["method"] or None,
        "company": row["company"] or None, "track_unlicensed": bool(row["track_unlicensed"]),
    }


def denied_since(conn: sa.Connection, since: int) -> list[str]:
    """Logins denied a seat after `since` (µs), each once."""
    return [r.login_key for r in conn.execute(
        sa.select(seat_denials.c.login_key).where(seat_denials.c.at > since).distinct()
        .order_by(seat_denials.c.login_key))]
