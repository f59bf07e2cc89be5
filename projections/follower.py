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

_registered: dict[str, type["Projection"]] = {}


def projection_positions(conn: sa.Connection) -> dict[str, int]:
    """Where every projection stands in the log (notification ids)."""
    return {name: int(pos) for name, pos in conn.execute(sa.select(projection_tracking))}


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
        """
        positions = self._known or self.positions()
        start = min(positions.values())
        decoded = self.reader.read(start, self.batch_size, self.topics)
        if not decoded:
            self._known = positions
            return 0
        last = decoded[-1][0]
        behind = [name for name, pos in positions.items() if last > pos]
        try:
            with self.writes_lock, self.engine.begin() as conn:
                for projection in self.projections:
                    mine = positions[projection.name]
                    wanted = self._wanted[projection.name]
                    events = [(i, e) for i, topic, e in decoded if i > mine and (wanted is None or topic in wanted)]
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
        except Exception as exc:
            self._known = None
            for projection in self.projections:
                projection.rolled_back()
            if not isinstance(exc, _PositionMoved) and self.positions() == positions:
                raise  # a real failure, not a race with another runner
            # Another runner (a second node, a rebuild) applied these events first; our rows
            # were rolled back with the conflict, so nothing is applied twice.
            log.info("projections %s: another runner applied events after %d; re-reading",
                     ", ".join(self.names), start)
            return 0
        self._known = {name: max(pos, last) for name, pos in positions.items()}
        for projection in self.projections:
            projection.committed()
        return len(decoded)

    def catch_up(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Apply everything in the log now. Returns the number of notifications consumed."""
        self.ensure_tracking_row()
        total = 0
        while True:
            n = self.run_once()
            if n == 0:
                if self.position() >= self.head() or not self._more_after_position():
                    return total
                continue
            total += n
            if progress:
                progress(self.position(), self.head())

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
        self._known = None
        log.info("projections %s: emptied, replaying the event log", ", ".join(self.names))
        return self.catch_up(progress)


class _PositionMoved(Exception):
    pass


class ProjectionRunner:
    """Keeps a set of followers caught up in a background thread (the in-process runner)."""

    def __init__(self, followers: Sequence[Follower], poll_seconds: float = 0.05,
                 acquire: Callable[[], bool] = lambda: True) -> None:
        self.followers = list(followers)
        self.poll_seconds = poll_seconds
        self._acquire = acquire
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
                    busy |= f.run_once() > 0
                except Exception:  # noqa: BLE001 - keep the runner alive; the error is logged
                    log.exception("projections %s failed; will retry in a second", ", ".join(f.names))
                    time.sleep(1)
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

    def first_waiting(self, name: str, position: int) -> tuple[int, float] | None:
        """The oldest event after `position` that projection `name` reads, as (notification id,
        when it was recorded in seconds since the epoch); None when the rest of the log holds
        only events it does not read."""
        page = self._log.read(position, 1, self._topics[name])
        if not page:
            return None
        notification_id, _topic, event = page[0]
        return notification_id, event.timestamp / 1_000_000
