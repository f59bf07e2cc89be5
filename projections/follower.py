"""Follows the event log into read models, exactly once, on SQLite and PostgreSQL alike.

eventsourcing's `subscribe()` does not exist on SQLite, so one mechanism serves both stores:
read a page of notifications after the stored position, decode them, then in ONE transaction
write the projection's rows and move the position forward *only if it is still where we read
it*. If another runner (a second node, a rebuild) moved it in between, the update matches no
row and the whole transaction rolls back: an event is never applied twice nor skipped.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Sequence

import sqlalchemy as sa
from eventsourcing.application import Application

from projections.sql import insert_ignoring_existing
from projections.tables import projection_tracking

log = logging.getLogger("pageledger.projections")


class Projection:
    """A read model built from events. Subclasses set `name`, `topics`, `tables` and `apply`."""

    name: str = ""
    topics: tuple[str, ...] = ()  # short topics of the events it reads (empty: all)
    tables: tuple[sa.Table, ...] = ()  # the tables it owns; emptied by a rebuild
    key_tables: tuple[Any, ...] = ()  # KeyTable caches it uses (told about commits)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
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
    """Runs one projection over the application's notification log."""

    def __init__(self, app: Application, engine: sa.Engine, projection: Projection,
                 batch_size: int = 1000) -> None:
        self.app = app
        self.engine = engine
        self.projection = projection
        self.batch_size = batch_size

    def ensure_tracking_row(self) -> None:
        with self.engine.begin() as conn:
            insert_ignoring_existing(conn, projection_tracking, [{"name": self.projection.name, "position": 0}])

    def position(self) -> int:
        with self.engine.connect() as conn:
            pos = conn.execute(sa.select(projection_tracking.c.position)
                               .where(projection_tracking.c.name == self.projection.name)).scalar()
        return int(pos or 0)

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def run_once(self) -> int:
        """Apply the next page of events. Returns how many notifications were consumed."""
        start = self.position()
        notifications = self.app.recorder.select_notifications(
            start=start, limit=self.batch_size, topics=self.projection.topics, inclusive_of_start=False)
        if not notifications:
            return 0
        to_event = self.app.mapper.to_domain_event
        events = [(n.id, to_event(n)) for n in notifications]
        last = notifications[-1].id
        try:
            with self.engine.begin() as conn:
                self.projection.apply(conn, events)
                moved = conn.execute(
                    projection_tracking.update()
                    .where(projection_tracking.c.name == self.projection.name)
                    .where(projection_tracking.c.position == start)
                    .values(position=last)
                ).rowcount
                if moved != 1:
                    raise _PositionMoved()
        except (_PositionMoved, sa.exc.IntegrityError) as exc:
            self.projection.rolled_back()
            if isinstance(exc, sa.exc.IntegrityError) and self.position() == start:
                raise  # a real conflict in the projection's own rows, not a race
            log.info("projection %s: another runner applied events after %d; re-reading",
                     self.projection.name, start)
            return 0
        except Exception:
            self.projection.rolled_back()
            raise
        self.projection.committed()
        return len(notifications)

    def catch_up(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Apply everything in the log now. Returns the number of events applied."""
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
        return bool(self.app.recorder.select_notifications(
            start=self.position(), limit=1, topics=self.projection.topics, inclusive_of_start=False))

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Empty the projection's tables, then replay the whole log into them."""
        with self.engine.begin() as conn:
            self.projection.reset(conn)
            insert_ignoring_existing(conn, projection_tracking, [{"name": self.projection.name, "position": 0}])
            conn.execute(projection_tracking.update()
                         .where(projection_tracking.c.name == self.projection.name).values(position=0))
        log.info("projection %s: emptied, replaying the event log", self.projection.name)
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
        self._wake = threading.Event()

    def start(self) -> None:
        for f in self.followers:
            f.ensure_tracking_row()
        self._thread = threading.Thread(target=self._run, name="projections", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """New events were saved: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
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
                    log.exception("projection %s failed; will retry", f.projection.name)
                    time.sleep(1)
            if not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
