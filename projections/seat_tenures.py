"""The licence's seats over time: every tenure of a seat (who took it, when, and when and why it
was given back) and the number of seats the licence allowed from each change of its terms.

`licence_seats` (projections/licence_seats.py) holds the seats as they are now; a seat released
since is gone from it. The licence usage report (projections/reports.py) needs the history, so
this read model keeps one row per tenure and one per change of terms, from the same Licence
events. Logins are kept as the licence's seat events carry them (its seat key, lower case), as
`licence_seats` keeps them: see docs/audit-privacy.md on what erasure does not reach.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.licence import Licence
from projections.follower import Projection, metadata
from projections.report_period import local_midnight
from projections.sql import insert_ignoring_existing

seat_tenures = sa.Table(
    "seat_tenures", metadata,
    sa.Column("login_key", sa.String(255), primary_key=True),
    sa.Column("taken_at", sa.BigInteger, primary_key=True),  # µs, Licence.SeatAssigned
    sa.Column("released_at", sa.BigInteger, nullable=True),  # µs, Licence.SeatReleased; NULL: still held
    sa.Column("ended_by", sa.String(100), nullable=False),  # SeatReleased's reason ("inactive", "removed"...); "" while held
    sa.Index("ix_seat_tenures_taken_at", "taken_at"),
)

# The seats allowed from each instant on: the trial or licence installed, then each activation.
seat_allowance = sa.Table(
    "seat_allowance", metadata,
    sa.Column("changed_at", sa.BigInteger, primary_key=True),  # µs
    sa.Column("seats", sa.Integer, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("change", sa.String(16), nullable=False),  # "installed" or "activated"
)

_TOPICS = (Licence.Installed, Licence.Activated, Licence.SeatAssigned, Licence.SeatReleased)


class SeatTenuresProjection(Projection):
    name = "seat_tenures"
    topics = tuple(short_topic(t) for t in _TOPICS)
    tables = (seat_tenures, seat_allowance)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        for _, e in events:
            if e.event_class is Licence.Installed:
                _allowance(conn, e.installed_at, e.seats, e.type, "installed")
            elif e.event_class is Licence.Activated:
                _allowance(conn, e.at, e.seats, e.type, "activated")
            elif e.event_class is Licence.SeatAssigned:
                insert_ignoring_existing(conn, seat_tenures, [{"login_key": e.user[:255], "taken_at": e.at,
                                                               "released_at": None, "ended_by": ""}])
            elif e.event_class is Licence.SeatReleased:
                t = seat_tenures.c
                conn.execute(seat_tenures.update().where(t.login_key == e.user[:255], t.released_at.is_(None))
                             .values(released_at=e.at, ended_by=(e.reason or "released")[:100]))


def _allowance(conn: sa.Connection, at: int, seats: int, type_: str, change: str) -> None:
    """Two changes in the same µs: the later event's terms are the ones in force."""
    conn.execute(seat_allowance.delete().where(seat_allowance.c.changed_at == at))
    conn.execute(seat_allowance.insert().values(changed_at=at, seats=seats, type=type_[:32], change=change))


# --- queries --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tenure:
    login_key: str
    taken_at: int
    released_at: int | None
    ended_by: str


def tenures_between(conn: sa.Connection, since: int, until: int) -> list[Tenure]:
    """The tenures that held a seat at some instant of [since, until), oldest first."""
    t = seat_tenures.c
    rows = conn.execute(sa.select(t.login_key, t.taken_at, t.released_at, t.ended_by).where(
        t.taken_at < until, sa.or_(t.released_at.is_(None), t.released_at > since))
        .order_by(t.taken_at, t.login_key))
    return [Tenure(*row) for row in rows]


def allowance_changes(conn: sa.Connection, until: int) -> list[tuple[int, int]]:
    """(changed_at, seats) of every change of terms before `until`, oldest first."""
    a = seat_allowance.c
    return [(int(at), int(seats)) for at, seats in conn.execute(
        sa.select(a.changed_at, a.seats).where(a.changed_at < until).order_by(a.changed_at))]


@dataclass(frozen=True)
class SeatDay:
    """One local day of a period (cut to the period at its edges)."""

    day: str  # YYYY-MM-DD in the report's time zone
    seats_max: int  # the most seats held at any one instant of the day
    seats_at_end: int  # seats held at the day's last instant (the period's, on its last day)
    seats_allowed: int  # what the licence in force at the day's last instant allowed
    taken: int  # seats taken during the day
    released: int  # seats given back during the day


def seats_by_day(tenures: Sequence[Tenure], allowance: Sequence[tuple[int, int]], since: int, until: int,
                 zone: ZoneInfo) -> list[SeatDay]:
    """Each local day of [since, until) in `zone`: seats held (most at once, and at its end), the
    seats allowed then, and the seats taken and given back. A seat given back and taken again in
    the same µs counts once at that instant (a release and a take at one instant net out)."""
    takes = sorted(t.taken_at for t in tenures)
    releases = sorted(t.released_at for t in tenures if t.released_at is not None)
    changes = sorted(allowance)
    change_times = [at for at, _ in changes]

    def held(at: int) -> int:  # seats held once every event at or before `at` is applied
        return bisect_right(takes, at) - bisect_right(releases, at)

    out = []
    day = datetime.fromtimestamp(since / 1e6, zone).date()
    while True:
        start = max(local_midnight(day, zone), since)
        end = min(local_midnight(day + timedelta(days=1), zone), until)
        if start >= until:
            break
        if start < end:
            inside = sorted({*takes[bisect_right(takes, start):bisect_left(takes, end)],
                             *releases[bisect_right(releases, start):bisect_left(releases, end)]})
            most = max([held(start), *(held(at) for at in inside)])
            n = bisect_right(change_times, end - 1)
            out.append(SeatDay(day.isoformat(), most, held(end - 1), changes[n - 1][1] if n else 0,
                               bisect_left(takes, end) - bisect_left(takes, start),
                               bisect_left(releases, end) - bisect_left(releases, start)))
        day += timedelta(days=1)
    return out
