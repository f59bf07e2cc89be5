"""Follows the event log into read models, exactly once, on SQLite and PostgreSQL alike.

eventsourcing's `subscribe()` does not exist on SQLite, so one mechanism serves both stores:
read a page of notifications after the stored position, decode them, then in ONE transaction
write the projection's rows and move the position forward *only if it is still where we read
it*. If another runner (a second node, a rebuild) moved it in between, the update matches no
row and the whole transaction rolls back: an event is never applied twice nor skipped.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import sqlalchemy as sa
from eventsourcing.application import Application

from projections.log_reader import LogReader
from projections.sql import insert_ignoring_existing

log = logging.getLogger("pageledger.projections")

# Every read-model table is defined on this metadata, each in the module of its projection;
# migrations/ creates and upgrades them (a test holds alembic head equal to it).
metadata = sa.MetaData()

# Where each projection stands in the log: written in the same transaction as its rows.
projection_tracking = sa.Table(
    "projection_tracking", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

# A projection that cannot apply an event: written by the runner, read by /healthz and
# /metrics on every node (the web workers are other processes than the runner), cleared when
# the projection applies it (after a skip, a fix and a rebuild).
projection_failures = sa.Table(
    "projection_failures", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),  # notification id of the event it cannot apply
    sa.Column("error", sa.String(300), nullable=False),  # one line: the error's kind and first line
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_failed_at", sa.BigInteger, nullable=False),  # µs
    sa.Column("last_failed_at", sa.BigInteger, nullable=False),  # µs
)

# The operator's decisions: this projection passes over that one event (which stays in the log).
projection_skips = sa.Table(
    "projection_skips", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),  # notification id of the skipped event
    sa.Column("error", sa.String(300), nullable=False),  # what it failed with when it was skipped
    sa.Column("skipped_at", sa.BigInteger, nullable=False),  # µs
    sa.Column("reason", sa.String(300), nullable=False),
)

# Back-off between attempts at an event a projection could not apply: 1 s, 2 s, 4 s, ... 5 min.
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 300.0

_registered: dict[str, type["Projection"]] = {}


def projection_positions(conn: sa.Connection) -> dict[str, int]:
    """Where every projection stands in the log (notification ids)."""
    return {name: int(pos) for name, pos in conn.execute(sa.select(projection_tracking))}


def projection_failure_rows(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    """The projections that cannot apply an event: name -> position, error, attempts, times."""
    return {r["name"]: {k: r[k] for k in ("position", "error", "attempts", "first_failed_at", "last_failed_at")}
            for r in conn.execute(sa.select(projection_failures)).mappings()}


def projection_skip_rows(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every event an operator told a projection to skip, oldest decision first."""
    return [dict(r) for r in conn.execute(sa.select(projection_skips)
                                          .order_by(projection_skips.c.skipped_at)).mappings()]


def skip_event(conn: sa.Connection, name: str, position: int, reason: str, now_us: int) -> None:
    """Record that projection `name` passes over the event at notification id `position`."""
    failure = conn.execute(sa.select(projection_failures.c.error)
                           .where(projection_failures.c.name == name)).scalar_one_or_none()
    error = failure if failure is not None else ""
    insert_ignoring_existing(conn, projection_skips, [{"name": name, "position": position, "error": error,
                                                       "skipped_at": now_us, "reason": reason[:300]}])


def error_line(exc: BaseException) -> str:
    """The error in one line without the data it was about: its kind and the first line of
    the driver's message (SQLAlchemy's own text appends the statement and its parameters,
    which can hold personal data; drivers put the offending row's values on later lines)."""
    inner = getattr(exc, "orig", None) or exc
    first = (str(inner).strip().splitlines() or [""])[0]
    return f"{type(inner).__name__}: {first}"[:300]


def all_projections() -> list["Projection"]:
    """One instance of every projection of the package, in a stable order.

    Projections register themselves by subclassing Projection with a `name`; importing every
    module of the package finds them all, so a new read model needs no list kept elsewhere.
    """
    import projections

    for info in sorted(pkgutil.iter_modules(projections.__path__), key=lambda m: m.name):
        importlib.import_module(f"projections.{info.name}")
    return [cls() for _, cls in sorted(_registered.items())]


class Projection:
    """A read model built from events. Subclasses set `name`, `topics`, `tables` and `apply`;
    a subclass with a `name` registers itself (see `all_projections`)."""

    name: str = ""
    topics: tuple[str, ...] = ()  # short topics of the events it reads (empty: all)
    tables: tuple[sa.Table, ...] = ()  # the tables it owns; emptied by a rebuild
    key_tables: tuple[Any, ...] = ()  # KeyTable caches it uses (told about commits)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            if cls.name in _registered and _registered[cls.name] is not cls:
                raise RuntimeError(f"two projections are named {cls.name!r}")
            _registered[cls.name] = cls

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        """Write the rows for `events`: (notification id, light view of the event) pairs, in
        log order (see adapters.codec.EventView: stored fields, `timestamp` in µs)."""
        raise NotImplementedError

    def reset(self, conn: sa.Connection) -> None:
        for table in self.tables:
            conn.execute(table.delete())

    def loaded(self, conn: sa.Connection) -> None:
        """Called after a catch-up that applied many events at once (a rebuild, the legacy
        migration): work the steady state leaves to the database, e.g. summarising a BRIN index."""

    def settle(self, conn: sa.Connection) -> bool:
        """Called when the log is caught up (the end of a catch-up, a runner with nothing to
        apply, a replay's end): finish work `apply` left for later because doing it event by
        event would cost more than once for many (e.g. the savings sums of spread-out jobs).
        Returns whether there was any; cheap when there is none."""
        return False

    def not_compared(self, live: sa.Connection, table: sa.Table) -> Callable[[tuple], bool] | None:
        """Rows of `table` that audit verify must not compare with a rebuild (which ends
        settled): those the live projection has yet to settle. None: compare every row."""
        return None

    def unsettled(self) -> bool:
        """Whether `settle` may have work, known without a query (the runner asks when idle)."""
        return False

    def committed(self) -> None:
        """Called after a transaction that applied events committed."""
        for keys in self.key_tables:
            keys.committed()

    def rolled_back(self) -> None:
        """Called after a transaction that applied events rolled back."""
        for keys in self.key_tables:
            keys.rolled_back()


class Follower:
    """Runs one or more projections over the application's notification log.

    Projections followed together share each page read from the log and its decoding (the
    larger part of a projection's cost), and are written in one transaction; each keeps its
    own position, so one that was rebuilt alone and stands further on is simply not given
    the events it already has.
    """

    def __init__(self, app: Application, engine: sa.Engine, projections: Projection | Sequence[Projection],
                 batch_size: int = 1000, writes_lock: AbstractContextManager = nullcontext()) -> None:
        self.app = app
        self.engine = engine
        self.writes_lock = writes_lock
        self.projections = [projections] if isinstance(projections, Projection) else list(projections)
        self.names = [p.name for p in self.projections]
        self.batch_size = batch_size
        every = any(not p.topics for p in self.projections)
        self.topics: tuple[str, ...] = () if every else tuple(sorted({t for p in self.projections for t in p.topics}))
        self._wanted = {p.name: (frozenset(p.topics) if p.topics else None) for p in self.projections}
        self.reader = LogReader(app)
        self._known: dict[str, int] | None = None  # positions as this follower last wrote them
        self.failures: dict[str, _Failure] = {}  # projections that cannot apply an event now
        self._skips: dict[str, set[int]] = {n: set() for n in self.names}
        self.clock = time.monotonic
        self._next_look = 0.0

    @property
    def projection(self) -> Projection:
        return self.projections[0]

    def ensure_tracking_row(self) -> None:
        with self.writes_lock, self.engine.begin() as conn:
            insert_ignoring_existing(conn, projection_tracking, [{"name": n, "position": 0} for n in self.names])

    def positions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(projection_tracking.c.name, projection_tracking.c.position)
                                .where(projection_tracking.c.name.in_(self.names)))
            found = {name: int(pos) for name, pos in rows}
        if len(found) < len(self.names):
            self.ensure_tracking_row()
        return {n: found.get(n, 0) for n in self.names}

    def position(self) -> int:
        return min(self.positions().values())

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def run_once(self) -> int:
        """Apply the next page of events. Returns how many notifications were consumed.

        The positions read last time are trusted until a write finds them moved: the guarded
        UPDATE catches any other runner, so the common pass costs one read of the log and one
        write transaction, not an extra query of the tracking table.

        A projection that cannot apply an event is set aside (`failures`, and the
        projection_failures table): the others go on without it, and it is tried again alone
        after a growing pause, or at once when an operator skipped the event or a rebuild
        cleared its failure.
        """
        if self.failures and self.clock() >= self._next_look:
            self._next_look = self.clock() + 1.0  # at most one small query a second
            self._look_for_repairs()
        healthy = [p for p in self.projections if p.name not in self.failures]
        consumed = self._apply_page(healthy) if healthy else 0
        now = self.clock()
        for projection in [p for p in self.projections if p.name in self.failures]:
            if self.failures[projection.name].next_try <= now:
                self._apply_page([projection])
        return consumed

    def _apply_page(self, chosen: list[Projection]) -> int:
        if self._known is None:
            self._known = self.positions()
            self._load_skips()
        positions = {p.name: self._known[p.name] for p in chosen}
        start = min(positions.values())
        topics = self._topics_of(chosen)
        decoded = self.reader.read(start, self.batch_size, topics)
        if not decoded:
            return 0
        try:
            self._write(chosen, positions, decoded)
        except _PositionMoved:
            self._moved(start)
            return 0
        except Exception:  # noqa: BLE001 - a projection cannot apply an event (or a race)
            self._known = self.positions()
            if any(self._known[name] != pos for name, pos in positions.items()):
                self._moved(start)  # a race with another runner, not a failure
                return 0
            if len(chosen) > 1:
                # Find which one fails: each projection alone, the others go on.
                for projection in chosen:
                    self._apply_page([projection])
                return len(decoded)
            self._find_poison(chosen[0], positions[chosen[0].name], decoded)
            return 0
        for projection in chosen:
            if projection.name in self.failures:
                self._recovered(projection.name)
        return len(decoded)

    def _write(self, chosen: list[Projection], positions: dict[str, int], decoded: list) -> None:
        last = decoded[-1][0]
        behind = [name for name, pos in positions.items() if last > pos]
        try:
            with self.writes_lock, self.engine.begin() as conn:
                for projection in chosen:
                    mine = positions[projection.name]
                    wanted = self._wanted[projection.name]
                    skipped = self._skips.get(projection.name, ())
                    events = [(i, e) for i, topic, e in decoded
                              if i > mine and (wanted is None or topic in wanted) and i not in skipped]
                    if events:
                        projection.apply(conn, events)
                for pos in sorted({positions[name] for name in behind}):
                    # One guarded UPDATE per distinct position (usually one for all of them).
                    names = [name for name in behind if positions[name] == pos]
                    moved = conn.execute(
                        projection_tracking.update()
                        .where(projection_tracking.c.name.in_(names))
                        .where(projection_tracking.c.position == pos)
                        .values(position=last)
                    ).rowcount
                    if moved != len(names):
                        raise _PositionMoved()
        except Exception:
            for projection in chosen:
                projection.rolled_back()
            raise
        assert self._known is not None
        self._known.update({name: max(pos, last) for name, pos in positions.items()})
        for projection in chosen:
            projection.committed()

    def _moved(self, start: int) -> None:
        # Another runner (a second node, a rebuild) applied these events first; our rows
        # were rolled back with the conflict, so nothing is applied twice.
        self._known = None
        log.info("projections %s: another runner applied events after %d; re-reading",
                 ", ".join(self.names), start)

    def _find_poison(self, projection: Projection, position: int, decoded: list) -> None:
        """Apply the page one event at a time up to the one that fails, and record that one."""
        wanted = self._wanted[projection.name]
        mine = [d for d in decoded if d[0] > position and (wanted is None or d[1] in wanted)]
        for entry in mine:
            try:
                self._write([projection], {projection.name: self._known[projection.name]}, [entry])
            except _PositionMoved:
                self._moved(entry[0])
                return
            except Exception as one:  # noqa: BLE001
                self._known = None
                self._failed(projection.name, entry[0], one)
                return
        # Every event applied alone (the page failed as a whole, e.g. a sum over it overflowed):
        # the projection has gone past them, nothing to record.
        if projection.name in self.failures:
            self._recovered(projection.name)

    def _failed(self, name: str, position: int, exc: Exception) -> None:
        previous = self.failures.get(name)
        attempts = previous.attempts + 1 if previous and previous.position == position else 1
        delay = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
        error = error_line(exc)
        self.failures[name] = _Failure(position, error, attempts, self.clock() + delay)
        now_us = time.time_ns() // 1000
        try:
            with self.writes_lock, self.engine.begin() as conn:
                updated = conn.execute(projection_failures.update().where(projection_failures.c.name == name)
                                       .values(position=position, error=error, attempts=attempts,
                                               last_failed_at=now_us)).rowcount
                if not updated:
                    insert_ignoring_existing(conn, projection_failures, [{
                        "name": name, "position": position, "error": error, "attempts": attempts,
                        "first_failed_at": now_us, "last_failed_at": now_us}])
        except Exception as store_exc:  # noqa: BLE001 - still logged below
            log.error("projection %s: could not record its failure: %s", name, error_line(store_exc))
        log.error("projection %s cannot apply the event at position %d (%s); attempt %d, next in %.0f s. "
                  "It stops there, the other projections go on; see `pageledger projections repair`",
                  name, position, error, attempts, delay,
                  extra={"projection": name, "position": position, "attempts": attempts,
                         "retry_seconds": delay, "failure": error})

    def _recovered(self, name: str) -> None:
        failure = self.failures.pop(name)
        with self.writes_lock, self.engine.begin() as conn:
            conn.execute(projection_failures.delete().where(projection_failures.c.name == name))
        log.info("projection %s applied the event at position %d and goes on", name, failure.position,
                 extra={"projection": name, "position": failure.position})

    def _look_for_repairs(self) -> None:
        """One small query while a projection is failing: did an operator skip its event, or
        did a rebuild (or another runner) clear its failure? Then try it again now."""
        with self.engine.connect() as conn:
            stored = {r.name: r.position for r in conn.execute(
                sa.select(projection_failures.c.name, projection_failures.c.position)
                .where(projection_failures.c.name.in_(list(self.failures))))}
            skips = {(r.name, r.position) for r in conn.execute(
                sa.select(projection_skips.c.name, projection_skips.c.position)
                .where(projection_skips.c.name.in_(list(self.failures))))}
        for name, failure in list(self.failures.items()):
            if (name, failure.position) in skips or stored.get(name) != failure.position:
                self._skips[name] = {pos for n, pos in skips if n == name}
                failure.next_try = 0.0
                self._known = None

    def _load_skips(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(projection_skips.c.name, projection_skips.c.position)
                                .where(projection_skips.c.name.in_(self.names)))
            self._skips = {n: set() for n in self.names}
            for name, pos in rows:
                self._skips[name].add(int(pos))

    def _topics_of(self, chosen: list[Projection]) -> tuple[str, ...]:
        if any(not p.topics for p in chosen):
            return ()
        return tuple(sorted({t for p in chosen for t in p.topics}))

    def catch_up(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Apply everything in the log now, then let the projections finish a bulk load
        (`Projection.loaded`). Returns the number of notifications consumed."""
        self.ensure_tracking_row()
        total = 0
        while True:
            n = self.run_once()
            if n == 0:
                if (self.failures and not self._healthy_behind()) or \
                        self.position() >= self.head() or not self._more_after_position():
                    # done, or the rest waits on an operator (see `failures`)
                    if total:
                        with self.writes_lock, self.engine.begin() as conn:
                            for projection in self.projections:
                                projection.loaded(conn)
                    self.settle()
                    return total
                continue
            total += n
            if progress:
                progress(self.position(), self.head())

    def settle(self) -> bool:
        """Let each healthy projection finish its deferred work (`Projection.settle`), each in a
        transaction of its own. Whether any had some."""
        done = False
        for projection in self.projections:
            if projection.name in self.failures or not projection.unsettled():
                continue
            try:
                with self.writes_lock, self.engine.begin() as conn:
                    done |= projection.settle(conn)
            except Exception:
                projection.rolled_back()
                raise
        return done

    def _healthy_behind(self) -> bool:
        healthy = [p for p in self.projections if p.name not in self.failures]
        if not healthy:
            return False
        positions = self.positions()
        return bool(self.reader.read(min(positions[p.name] for p in healthy), 1, self._topics_of(healthy)))

    def _more_after_position(self) -> bool:
        # With a topic filter, the position can stay below the head when the rest of the log
        # holds only other events: then there is nothing more to do.
        return bool(self.reader.read(self.position(), 1, self.topics))

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Empty the projections' tables, then replay the whole log into them."""
        with self.writes_lock, self.engine.begin() as conn:
            for projection in self.projections:
                projection.reset(conn)
            insert_ignoring_existing(conn, projection_tracking, [{"name": n, "position": 0} for n in self.names])
            conn.execute(projection_tracking.update()
                         .where(projection_tracking.c.name.in_(self.names)).values(position=0))
            conn.execute(projection_failures.delete().where(projection_failures.c.name.in_(self.names)))
        self._known = None
        self.failures.clear()
        log.info("projections %s: emptied, replaying the event log", ", ".join(self.names))
        return self.catch_up(progress)


class _PositionMoved(Exception):
    pass


@dataclass
class _Failure:
    position: int  # notification id of the event the projection cannot apply
    error: str
    attempts: int
    next_try: float  # monotonic time of the next attempt


class ProjectionRunner:
    """Keeps a set of followers caught up in a background thread (the in-process runner)."""

    def __init__(self, followers: Sequence[Follower], poll_seconds: float = 0.05,
                 acquire: Callable[[], bool] = lambda: True) -> None:
        self.followers = list(followers)
        self.poll_seconds = poll_seconds
        self._acquire = acquire
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors = 0  # consecutive passes that failed as a whole

    def start(self) -> None:
        for f in self.followers:
            f.ensure_tracking_row()
        self._thread = threading.Thread(target=self._run, name="projections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set() and not self._acquire():
            # Another process runs the projections; take over when it stops.
            self._stop.wait(2.0)
        while not self._stop.is_set():
            busy = False
            for f in self.followers:
                try:
                    applied = f.run_once() > 0
                    busy |= applied
                    if not applied:
                        f.settle()
                except Exception as exc:  # noqa: BLE001 - the log or the database is unreachable
                    # (a projection that cannot apply an event is handled inside run_once)
                    self._errors += 1
                    delay = min(FIRST_RETRY_SECONDS * 2 ** (self._errors - 1), MAX_RETRY_SECONDS)
                    log.error("projections %s: %s; retrying in %.0f s", ", ".join(f.names), error_line(exc), delay)
                    self._stop.wait(delay)
                else:
                    self._errors = 0
            if not busy:
                self._stop.wait(self.poll_seconds)


class ReadModelProgress:
    """What /healthz asks of the store, on any node (it needs no local runner): the log's head,
    each projection's position, the oldest event a projection has yet to apply, and whether a
    runner runs. Each answer is one small indexed query."""

    def __init__(self, app: Application, engine: sa.Engine, topics: dict[str, tuple[str, ...]],
                 runner_running: Callable[[], bool]) -> None:
        self._engine = engine
        self._log = LogReader(app)
        self._topics = topics  # projection name -> the topics it reads (empty: all)
        self.runner_running = runner_running

    def head(self) -> int:
        return self._log.head()

    def positions(self) -> dict[str, int]:
        with self._engine.connect() as conn:
            found = projection_positions(conn)
        return {name: found.get(name, 0) for name in self._topics}

    def failures(self) -> dict[str, dict[str, Any]]:
        """The projections that cannot apply an event, as the runner recorded them."""
        with self._engine.connect() as conn:
            return projection_failure_rows(conn)

    def first_waiting(self, name: str, position: int) -> tuple[int, float] | None:
        """The oldest event after `position` that projection `name` reads, as (notification id,
        when it was recorded in seconds since the epoch); None when the rest of the log holds
        only events it does not read."""
        page = self._log.read(position, 1, self._topics[name])
        if not page:
            return None
        notification_id, _topic, event = page[0]
        return notification_id, event.timestamp / 1_000_000
