"""Replaying the log into scratch tables: figures as they stood at an instant, and a check that
every live read model is what the log says it is.

Both run the projections' own `apply` (the code that built the live tables) into a scratch
SQLite database in a temporary directory, never into the live tables:

- `replay_as_of` gives each projection only the events *recorded* up to an instant (the
  event's own timestamp, written when it was recorded, not the time a job says it was
  printed): a job recorded on 2 February about a print of 31 January is left out of the
  figures as of 31 January 23:59:59, as it was left out of them that night.
- `verify_read_models` takes one consistent snapshot of the live tables and positions, replays
  each projection up to the position its live tables stand at, and compares the tables row by
  row in key order, naming every row that is missing, extra or different.

The key tables (projections.names) are copied from the live database first: they are never
emptied, so a replay hands out the same ids as the live tables and rows compare as they are.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import sqlalchemy as sa
from eventsourcing.application import Application

from projections.follower import Projection, all_projections, metadata, projection_positions, projection_skips
from projections.log_reader import LogReader
from projections.names import application_keys, host_keys, printer_keys, user_keys

log = logging.getLogger("pageledger.audit")

KEY_TABLES = (user_keys, printer_keys, host_keys, application_keys)
# Events are recorded in notification order, but two writers' clocks race by the length of a
# transaction: a scan for an instant reads on until the log is this far past it.
RECORDED_SLACK_US = 60 * 1_000_000
PAGE = 2000

Progress = Callable[[int, int], None]  # (events read, head of the log)


class Scratch:
    """A scratch SQLite database with the read models' schema, removed on close."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="pageledger-replay-", dir=directory))
        self.engine = sa.create_engine(f"sqlite:///{self.directory / 'scratch.db'}")

        @sa.event.listens_for(self.engine, "connect")
        def _fast(dbapi_conn, _record):  # noqa: ANN001 - a throwaway copy needs no durability
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=OFF")
            cur.execute("PRAGMA synchronous=OFF")
            cur.close()

        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "Scratch":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def copy_key_tables(live: sa.Connection, scratch: sa.Engine) -> None:
    with scratch.begin() as out:
        for table in KEY_TABLES:
            rows = [dict(r) for r in live.execute(sa.select(table)).mappings()]
            out.execute(table.delete())
            if rows:
                out.execute(table.insert(), rows)


def _skips(live: sa.Connection) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for name, position in live.execute(sa.select(projection_skips.c.name, projection_skips.c.position)):
        found.setdefault(name, set()).add(int(position))
    return found


def _topics(chosen: Sequence[Projection]) -> tuple[str, ...]:
    if any(not p.topics for p in chosen):
        return ()
    return tuple(sorted({t for p in chosen for t in p.topics}))


def replay(reader: LogReader, scratch: sa.Engine, chosen: Sequence[Projection], *,
           upto: dict[str, int] | None = None, recorded_until: int | None = None,
           skips: dict[str, set[int]] | None = None, progress: Progress | None = None) -> int:
    """Apply the log to `chosen` projections in `scratch`: each up to its position in `upto`
    (else the head), and only events recorded at or before `recorded_until` (µs) when given.
    Returns the number of events read."""
    head = reader.head()
    limit = max(upto.values()) if upto else head
    wanted = {p.name: (frozenset(p.topics) if p.topics else None) for p in chosen}
    skips = skips or {}
    after = 0
    read = 0
    topics = _topics(chosen)
    while after < limit:
        page = reader.read(after, PAGE, topics)
        if not page:
            break
        after = page[-1][0]
        page = [entry for entry in page if entry[0] <= limit]
        read += len(page)
        if recorded_until is not None:
            kept = [entry for entry in page if entry[2].timestamp <= recorded_until]
            past = all(entry[2].timestamp > recorded_until + RECORDED_SLACK_US for entry in page)
        else:
            kept, past = page, False
        with scratch.begin() as conn:
            for projection in chosen:
                mine = upto.get(projection.name, head) if upto else head
                topics_of = wanted[projection.name]
                skipped = skips.get(projection.name, set())
                events = [(i, e) for i, topic, e in kept
                          if i <= mine and (topics_of is None or topic in topics_of) and i not in skipped]
                if events:
                    projection.apply(conn, events)
        for projection in chosen:
            projection.committed()
        if progress:
            progress(after, head)
        if past:
            break
    with scratch.begin() as conn:
        for projection in chosen:
            projection.settle(conn)
    return read


# --- as of an instant -----------------------------------------------------------------------

def replay_as_of(app: Application, live: sa.Engine, instant_us: int, names: Sequence[str],
                 scratch: Scratch, progress: Progress | None = None) -> int:
    """Replay the projections `names` into `scratch` with the events recorded up to `instant_us`."""
    chosen = [p for p in all_projections() if p.name in names]
    with live.connect() as conn:
        copy_key_tables(conn, scratch.engine)
        skips = _skips(conn)
    read = replay(LogReader(app), scratch.engine, chosen, recorded_until=instant_us, skips=skips, progress=progress)
    log.info("replayed %d events recorded up to the instant into %s", read, ", ".join(names))
    return read


# --- verifying the live read models ---------------------------------------------------------

@dataclass
class TableDifference:
    table: str
    key: tuple
    kind: str  # "missing" (in the live table), "extra" (in the live table only), "different"
    live: tuple | None = None
    rebuilt: tuple | None = None

    def describe(self) -> str:
        key = ", ".join(str(k) for k in self.key)
        if self.kind == "missing":
            return f"{self.table} ({key}): in the rebuild but missing from the live table"
        if self.kind == "extra":
            return f"{self.table} ({key}): in the live table but not in the rebuild"
        return f"{self.table} ({key}): live {self.live} but rebuilt {self.rebuilt}"


@dataclass
class ProjectionCheck:
    name: str
    position: int
    rows: int = 0
    differences: int = 0
    shown: list[TableDifference] = field(default_factory=list)


@dataclass
class ReadModelReport:
    checks: list[ProjectionCheck] = field(default_factory=list)
    events_read: int = 0

    @property
    def ok(self) -> bool:
        return all(c.differences == 0 for c in self.checks)


SHOWN_DIFFERENCES = 20


def _ordered_rows(conn: sa.Connection, table: sa.Table) -> Iterator[tuple]:
    keys = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(stream_results=True, yield_per=5000).execute(
        sa.select(*table.columns).order_by(*keys))
    for row in result:
        yield tuple(_plain(v) for v in row)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def compare_tables(live: sa.Connection, rebuilt: sa.Connection, table: sa.Table, check: ProjectionCheck,
                   skip: Callable[[tuple], bool] | None = None) -> None:
    """Compare a table's live rows with the rebuilt ones, by key; rows for which `skip` holds
    (`Projection.not_compared`) are left out on both sides."""
    key_idx = [i for i, c in enumerate(table.columns) if c.primary_key] or list(range(len(table.columns)))

    def key(row: tuple) -> tuple:
        return tuple(row[i] for i in key_idx)

    def note(diff: TableDifference) -> None:
        check.differences += 1
        if len(check.shown) < SHOWN_DIFFERENCES:
            check.shown.append(diff)

    a_iter, b_iter = _ordered_rows(live, table), _ordered_rows(rebuilt, table)
    if skip is not None:
        a_iter, b_iter = (r for r in a_iter if not skip(r)), (r for r in b_iter if not skip(r))
    a, b = next(a_iter, None), next(b_iter, None)
    while a is not None or b is not None:
        check.rows += 1
        if b is None or (a is not None and key(a) < key(b)):
            note(TableDifference(table.name, key(a), "extra", live=a))
            a = next(a_iter, None)
        elif a is None or key(b) < key(a):
            note(TableDifference(table.name, key(b), "missing", rebuilt=b))
            b = next(b_iter, None)
        else:
            if a != b:
                note(TableDifference(table.name, key(a), "different", live=a, rebuilt=b))
            a, b = next(a_iter, None), next(b_iter, None)


def verify_read_models(app: Application, live: sa.Engine, scratch: Scratch,
                       progress: Progress | None = None) -> ReadModelReport:
    """Rebuild every projection into `scratch` up to where its live tables stand, and compare."""
    chosen = all_projections()
    report = ReadModelReport()
    with live.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        # One snapshot: the positions, the key tables and every live row are read in it.
        positions = projection_positions(conn)
        copy_key_tables(conn, scratch.engine)
        upto = {p.name: positions.get(p.name, 0) for p in chosen}
        report.events_read = replay(LogReader(app), scratch.engine, chosen, upto=upto, skips=_skips(conn),
                                    progress=progress)
        with scratch.engine.connect() as rebuilt:
            for projection in chosen:
                check = ProjectionCheck(projection.name, upto[projection.name])
                for table in projection.tables:
                    compare_tables(conn, rebuilt, table, check, projection.not_compared(conn, table))
                report.checks.append(check)
    return report
