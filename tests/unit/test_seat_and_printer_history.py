"""The licence's seat tenures and the printers' error periods: the domain decisions, the two
projections (events stored and read back as the log gives them, applied to in-memory SQLite),
and the seats-per-day arithmetic against a brute-force count."""
from __future__ import annotations

import random
from uuid import uuid4
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from adapters.codec import decode_view
from adapters.event_store import PageLedger
from domain.licence import ACTIVATED_BY_FILE, SUITE, Licence
from domain.printers import PrinterStatus, is_error_state
from domain.units import MICROS_PER_DAY, to_micros
from projections.printer_errors import PrinterErrorsProjection, errors_between, printer_errors
from projections.seat_tenures import (SeatTenuresProjection, Tenure, allowance_changes, seat_allowance, seat_tenures,
                                      seats_by_day, tenures_between)

T0 = to_micros(datetime(2026, 3, 1, 8, tzinfo=timezone.utc))
HOUR = 3600 * 1_000_000


@pytest.fixture
def app():
    return PageLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
def db():
    engine = sa.create_engine("sqlite://")
    for table in (seat_tenures, seat_allowance, printer_errors):
        table.create(engine)
    yield engine
    engine.dispose()


def views(app, projection, *aggregates):
    """The aggregates' pending events as the log gives them to `projection` (its topics only)."""
    out = []
    for aggregate in aggregates:
        for event in aggregate.collect_events():
            stored = app.mapper.to_stored_event(event)
            if stored.topic in projection.topics:
                out.append((len(out) + 1, decode_view(stored.topic, stored.state, event.originator_id)))
    return out


def activate(licence, seats, at):
    licence.activate(key="k", company="Acme", method=ACTIVATED_BY_FILE, host="h", mac="m", type=SUITE, seats=seats,
                     expires_at=0, now=at)


def test_every_tenure_and_every_change_of_terms_is_kept(app, db):
    lic = Licence.install_trial(uuid4(), now=T0)
    for i, login in enumerate(("ann", "bob", "cat", "dan", "eve")):
        lic.claim_seat(login, T0 + i * HOUR)
    assert not lic.claim_seat("fay", T0 + 6 * HOUR).granted  # denied: no tenure
    lic.release_seat("bob", T0 + 7 * HOUR, reason="left the company")
    lic.claim_seat("fay", T0 + 8 * HOUR)
    activate(lic, 10, T0 + 9 * HOUR)
    lic.claim_seat("Bob", T0 + 10 * HOUR)  # back, under the new licence: a second tenure of the same seat key
    lic.release_seat("ann", T0 + 11 * HOUR, reason="removed")
    with db.begin() as conn:
        projection = SeatTenuresProjection()
        projection.apply(conn, views(app, projection, lic))
    with db.connect() as conn:
        rows = {(r.login_key, r.taken_at): (r.released_at, r.ended_by) for r in conn.execute(sa.select(seat_tenures))}
        held = tenures_between(conn, T0 + 7 * HOUR, T0 + 8 * HOUR)
        assert allowance_changes(conn, T0 + 100 * HOUR) == [(T0, 5), (T0 + 9 * HOUR, 10)]
        assert allowance_changes(conn, T0 + 9 * HOUR) == [(T0, 5)]
    assert rows == {("ann", T0): (T0 + 11 * HOUR, "removed"),
                    ("bob", T0 + HOUR): (T0 + 7 * HOUR, "left the company"),
                    ("cat", T0 + 2 * HOUR): (None, ""), ("dan", T0 + 3 * HOUR): (None, ""),
                    ("eve", T0 + 4 * HOUR): (None, ""), ("fay", T0 + 8 * HOUR): (None, ""),
                    ("bob", T0 + 10 * HOUR): (None, "")}
    # bob's first tenure ended at the period's first instant: it held no seat inside it.
    assert [t.login_key for t in held] == ["ann", "cat", "dan", "eve"]


def brute_force(tenures, allowance, since, until, zone):
    """Every µs boundary checked one by one: the seats held at each event instant and day edge."""
    out = []
    day = datetime.fromtimestamp(since / 1e6, zone).date()
    while True:
        start = max(to_micros(datetime.combine(day, datetime.min.time(), zone)), since)
        end = min(to_micros(datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)), until)
        if start >= until:
            return out

        def held(at):
            return sum(1 for t in tenures if t.taken_at <= at and (t.released_at is None or t.released_at > at))

        instants = [start] + [x for t in tenures for x in (t.taken_at, t.released_at)
                              if x is not None and start < x < end]
        allowed = [s for at, s in sorted(allowance) if at <= end - 1]
        out.append((day.isoformat(), max(held(at) for at in instants), held(end - 1), allowed[-1] if allowed else 0,
                    sum(start <= t.taken_at < end for t in tenures),
                    sum(t.released_at is not None and start <= t.released_at < end for t in tenures)))
        day += timedelta(days=1)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "America/Santiago", "Pacific/Kiritimati"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seats_per_day_match_a_brute_force_count(tz, seed):
    rng = random.Random(seed)
    zone = ZoneInfo(tz)
    base = to_micros(datetime(2026, 3, 20, tzinfo=timezone.utc))  # spans the March DST changes
    tenures = []
    for n in range(40):
        taken = base + rng.randrange(0, 20 * MICROS_PER_DAY)
        released = taken + rng.randrange(1, 6 * MICROS_PER_DAY) if rng.random() < 0.7 else None
        tenures.append(Tenure(f"u{n}", taken, released, "inactive" if released else ""))
    # a release and a take in the same µs, and a tenure ending exactly at a local midnight
    midnight = to_micros(datetime(2026, 3, 25, tzinfo=zone))
    tenures += [Tenure("x", base, midnight, "inactive"), Tenure("y", midnight, None, "")]
    allowance = [(base - MICROS_PER_DAY, 5), (base + 7 * MICROS_PER_DAY + 1, 25), (midnight, 30)]
    since = base + rng.randrange(0, MICROS_PER_DAY)
    until = base + 18 * MICROS_PER_DAY + rng.randrange(0, MICROS_PER_DAY)
    got = [(d.day, d.seats_max, d.seats_at_end, d.seats_allowed, d.taken, d.released)
           for d in seats_by_day(tenures, allowance, since, until, zone)]
    assert got == brute_force(tenures, allowance, since, until, zone)
    assert len(got) in (18, 19, 20)


def test_a_printer_error_is_recorded_on_change_only(app, db):
    status = PrinterStatus.register(uuid4(), "hall-release")
    assert not status.observe(in_error=False, reasons=[], message="", at=T0)  # fine already: nothing
    assert status.observe(in_error=True, reasons=["paused"], message="toner", at=T0 + HOUR)
    assert not status.observe(in_error=True, reasons=["paused"], message="toner", at=T0 + 2 * HOUR)  # the same
    assert status.observe(in_error=True, reasons=["paused", "media-empty-error"], message="no paper",
                          at=T0 + 3 * HOUR)
    assert not status.observe(in_error=False, reasons=[], message="", at=T0 + 2 * HOUR)  # late, older: no news
    assert status.observe(in_error=False, reasons=[], message="", at=T0 + 4 * HOUR)
    assert not status.observe(in_error=False, reasons=[], message="", at=T0 + 5 * HOUR)
    assert status.observe(in_error=True, reasons=["media-jam-error"], message="", at=T0 + 6 * HOUR)
    other = PrinterStatus.register(uuid4(), "lab")
    other.observe(in_error=True, reasons=["paused"], message="", at=T0)
    with db.begin() as conn:
        projection = PrinterErrorsProjection()
        projection.apply(conn, views(app, projection, status, other))
    with db.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(printer_errors).order_by(printer_errors.c.started_at,
                                                                                  printer_errors.c.printer))]
        assert [e.printer for e in errors_between(conn, T0 + 4 * HOUR, T0 + 5 * HOUR)] == ["lab"]
        assert [e.printer for e in errors_between(conn, T0, T0 + 10 * HOUR, ["hall-release"])] == ["hall-release"] * 2
    assert rows == [("lab", T0, None, "paused", ""),
                    ("hall-release", T0 + HOUR, T0 + 4 * HOUR, "paused,media-empty-error", "no paper"),
                    ("hall-release", T0 + 6 * HOUR, None, "media-jam-error", "")]


@pytest.mark.parametrize("state,reasons,error", [
    ("idle", ("none",), False), ("processing", ("toner-low-warning",), False), ("stopped", ("paused",), True),
    ("idle", ("media-empty-error",), True), ("idle", ("com.vendor.door-open-report",), False),
])
def test_what_counts_as_an_error(state, reasons, error):
    from agent.cups_release import PrinterState

    assert is_error_state(state, reasons) is error
    assert PrinterState("q", state, reasons, "", True).in_error is error  # the agent agrees
