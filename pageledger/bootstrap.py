"""Wires one PageLedger runtime: settings → event store, read-model engines, projections."""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

import migrations
from commands.application import PageLedger
from commands.printers import PrinterCache
from domain.costs import CostSchedule
from pageledger.settings import Settings
from pageledger.spool import SpoolStore
from pageledger.stores import event_store_env, is_postgres, parse_database_url, read_model_engine, writes_lock
from projections.access_tokens import AccessTokensProjection
from projections.follower import Follower, Projection, ProjectionRunner
from projections.jobs import JobsProjection
from projections.licence_seats import LicenceSeatsProjection, LoginAuditProjection
from projections.log_reader import LogReader
from projections.queries import projection_positions
from projections.usage_daily import UsageDailyProjection
from projections.users import UsersProjection

log = logging.getLogger("pageledger")


def all_projections() -> list[Projection]:
    return [AccessTokensProjection(), JobsProjection(), UsageDailyProjection(), UsersProjection(),
            LicenceSeatsProjection(), LoginAuditProjection()]


@dataclass
class Runtime:
    """Everything a process of PageLedger needs, built once from the settings."""

    settings: Settings
    app: PageLedger
    writer: sa.Engine  # projections write through this one
    reader: sa.Engine  # the API reads through this one
    followers: dict[str, Follower]
    printers: PrinterCache = field(init=False)
    spool: SpoolStore = field(init=False)
    runner: ProjectionRunner | None = None
    _lock: "RunnerLock | None" = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.printers = PrinterCache(self.app, self.default_schedule)
        self.spool = SpoolStore(self.settings.data_dir / "spool")

    @property
    def default_schedule(self) -> CostSchedule:
        s = self.settings
        return CostSchedule(mono_page=s.default_mono_page, colour_page=s.default_colour_page,
                            duplex_discount_pct=s.default_duplex_discount_pct)

    def all_together(self, batch_size: int = 1000) -> Follower:
        """One follower for every projection: each page of the log is read and decoded once."""
        return Follower(self.app, self.writer, [f.projection for f in self.followers.values()], batch_size,
                        writes_lock(self.settings.resolved_database_url))

    @cached_property
    def identity(self):  # noqa: ANN201 - pageledger.identity.Identity, imported lazily
        """Licence, directory source, sessions and PIN digests (issue 5), built on first use."""
        from pageledger.identity import Identity

        return Identity(self)

    def catch_up(self) -> None:
        """Bring every projection up to the head of the log, in this thread."""
        self.all_together().catch_up()

    def start_projections(self) -> None:
        """Run the projections in a background thread, if this process wins the runner lock.

        The runner polls (every `projection_poll_seconds`) rather than waking on each save:
        under load each pass then applies many events in one transaction, instead of paying a
        transaction's round trips for every single-job request.
        """
        self._lock = RunnerLock(self.settings)
        self.runner = ProjectionRunner([self.all_together()], self.settings.projection_poll_seconds,
                                       acquire=self._lock.acquire)
        self.runner.start()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.runner:
            self.runner.stop()
        if self._lock:
            self._lock.release()
        self.app.close()
        self.writer.dispose()
        self.reader.dispose()


def run_projections(settings: Settings, stop: threading.Event) -> None:
    """The projection runner as a process of its own (`pageledger up` starts one): it uses
    the second core instead of competing with the web workers for one interpreter lock."""
    runtime = build_runtime(settings, migrate=False)
    try:
        runtime.start_projections()
        log.info("projection runner started")
        while not stop.is_set():  # sleeping, not waiting on a lock: signals can unwind it
            time.sleep(0.5)
    finally:
        runtime.close()
        log.info("projection runner stopped")


def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    url = settings.resolved_database_url
    if not is_postgres(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    with _event_store_ddl_in_turn(url):
        app = PageLedger(env=event_store_env(url), server_id=settings.server_id)
    writer = read_model_engine(url, writer=True)
    reader = read_model_engine(url)
    if migrate:
        migrations.upgrade(writer)
    lock = writes_lock(url)
    followers = {p.name: Follower(app, writer, p, writes_lock=lock) for p in all_projections()}
    return Runtime(settings, app, writer, reader, followers)


RUNNER_LOCK_KEY = zlib.crc32(b"pageledger-projections")  # PostgreSQL advisory lock keys
EVENT_STORE_DDL_LOCK_KEY = zlib.crc32(b"pageledger-event-store-ddl")


def _pg_connect(url: str):  # noqa: ANN202 - psycopg.Connection, imported lazily
    import psycopg

    parsed = parse_database_url(url)
    return psycopg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                           dbname=parsed.database, user=parsed.username or "postgres",
                           password=parsed.password or "", autocommit=True)


@contextmanager
def _event_store_ddl_in_turn(url: str) -> Iterator[None]:
    """Opening the event store runs its DDL (`CREATE OR REPLACE FUNCTION` among it) in every
    process; on PostgreSQL two at once fail with "tuple concurrently updated", and the web
    workers and the projection runner all open it at the same moment. They take turns."""
    if not is_postgres(url):
        yield  # SQLite serialises its own DDL
        return
    with _pg_connect(url) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (EVENT_STORE_DDL_LOCK_KEY,))
        yield  # closing the connection lets go of the lock


def _runner_lock_path(url: str) -> Path:
    return Path(parse_database_url(url).database + ".projections.lock")


class RunnerLock:
    """At most one projection runner per database, across processes and hosts.

    PostgreSQL: a session advisory lock held on a dedicated connection. SQLite (one host): an
    exclusive flock on a file beside the database. Losing the race is not an error; the
    runner keeps trying, so another node takes over when the holder stops.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.resolved_database_url
        self._conn = None
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def acquire(self) -> bool:
        with self._mutex:
            if self._conn is not None or self._fd is not None:
                return True
            if is_postgres(self.url):
                conn = _pg_connect(self.url)
                if conn.execute("SELECT pg_try_advisory_lock(%s)", (RUNNER_LOCK_KEY,)).fetchone()[0]:
                    self._conn = conn
                    return True
                conn.close()
                return False
            fd = os.open(_runner_lock_path(self.url), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def runner_lock_is_held(url: str, engine: sa.Engine) -> bool:
    """Whether a projection runner holds the runner lock right now, on any node.

    The lock is the runner's own proof of life: the database (PostgreSQL) or the kernel (the
    SQLite host's flock) lets go of it the moment its holder dies, so no heartbeat can go stale
    and no clock is compared. PostgreSQL: one look at pg_locks, from any node. SQLite: a shared
    flock taken and dropped at once; a runner trying to start in that instant waits for its next
    attempt (two seconds).
    """
    if is_postgres(url):
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid::bigint = CAST(:key AS bigint) >> 32"
                " AND objid::bigint = CAST(:key AS bigint) & 4294967295 AND objsubid = 1)"),
                {"key": RUNNER_LOCK_KEY}).scalar())
    try:
        fd = os.open(_runner_lock_path(url), os.O_RDONLY)
    except FileNotFoundError:
        return False  # no runner ever ran here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class ReadModelProgress:
    """What /healthz asks of the store, on any node (it needs no local runner): the log's head,
    each projection's position, the oldest event a projection has yet to apply, and whether a
    runner runs. Each answer is one small indexed query."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._log = LogReader(runtime.app)
        self._topics = {name: f.topics for name, f in runtime.followers.items()}

    def head(self) -> int:
        return self._log.head()

    def positions(self) -> dict[str, int]:
        with self._runtime.reader.connect() as conn:
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

    def runner_running(self) -> bool:
        return runner_lock_is_held(self._runtime.settings.resolved_database_url, self._runtime.reader)
