"""The migration itself: users, printers and their cost schedules, then jobs in key order, each
step saved through the live system's command handlers together with the migration's own
checkpoint (domain.legacy_migration), so a killed run resumes exactly where it stopped.

Steps, each skipped when the checkpoint says it is done:
  1. users           ImportLegacyUsers, one transaction
  2. printers        ReplayLegacySchedules, one transaction per printer
  3. unkeyed jobs    rows without a legacy id are set aside (they could never be resumed past)
  4. jobs            RecordMigratedJobs, one transaction per batch, in legacy key order
`--dry-run` runs the same checks and counts and writes nothing.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterator

from eventsourcing.persistence import IntegrityError
from tqdm import tqdm

from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from commands.jobs import MigratedJob, RecordMigratedJobs
from commands.printers import ReplayLegacySchedules
from commands.users import ImportLegacyUsers
from domain.costs import CostSchedule, sheets_for
from domain.legacy_migration import LegacyMigration, migration_id
from tools.pa6_migrate import source as src
from tools.pa6_migrate.mapping import Mapping
from tools.pa6_migrate.rows import Bad, JobRows, RowReader, Schedules, SiteZone, clean_name, integer, moment, \
    money, text

log = logging.getLogger("pageledger.pa6_migrate")

PROGRESS_LOG_SECONDS = 10.0


class TooManyRejects(RuntimeError):
    """More rows were set aside than --max-rejects allows: the mapping is probably wrong."""


class MigrationMismatch(RuntimeError):
    """The checkpoint was written by a run with other settings than this one."""


class ExistingPrinters(RuntimeError):
    """Legacy cost schedules name printers PageLedger has already, and the operator has not said
    whether the newest legacy schedule may become their price (--existing-printers)."""


EXISTING_PRINTERS = ("refuse", "keep-price", "take-legacy-price")


@dataclass
class LegacyPrinters:
    """The legacy printers and cost settings as read, before anything is replayed."""

    names: dict[str, str]  # lower-case name -> name as written
    by_printer: dict[str, list[tuple[int, CostSchedule]]]  # lower-case name -> (from µs, schedule)
    rejects: list[list[Any]]


@dataclass
class Target:
    """The PageLedger side: the event store and the handlers the live system uses."""

    app: PageLedger
    import_users: ImportLegacyUsers
    replay_schedules: ReplayLegacySchedules
    record_jobs: RecordMigratedJobs
    directory_source: str
    clock: Callable[[], int]


@dataclass
class Options:
    name: str = "pa6"
    batch: int = 5000
    max_rejects: int = 1000
    dry_run: bool = False
    progress: bool | None = None  # None: a bar when stderr is a terminal
    existing_printers: str = "refuse"  # one of EXISTING_PRINTERS


@dataclass
class Outcome:
    """What a run did; `rejects` are all rows set aside so far (earlier runs' too)."""

    migration: LegacyMigration | None
    jobs_recorded: int = 0  # by this run
    rejects: list[list[Any]] = field(default_factory=list)
    accepted: dict[str, list[int]] = field(default_factory=dict)  # dry run: month -> [impressions, sheets, cost, jobs]
    seconds: float = 0.0


class Migrator:
    def __init__(self, conn: Any, mapping: Mapping, zone: SiteZone, target: Target, options: Options) -> None:
        self.conn = conn
        self.mapping = mapping
        self.zone = zone
        self.target = target
        self.options = options
        self.rejects: list[list[Any]] = []  # this run's
        self.outcome = Outcome(None)

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.monotonic()
        opts = self.options
        log.info("legacy migration %s: %s, site time zone %s (a time the clocks went back is read as its %s "
                 "occurrence; a time they skipped is %s)", opts.name,
                 "dry run, nothing is written" if opts.dry_run else "replaying", self.zone.name, self.zone.ambiguous,
                 "read with the offset before the change" if self.zone.nonexistent == "forward" else "set aside",
                 extra={"migration": opts.name, "site_zone": self.zone.name, "ambiguous": self.zone.ambiguous,
                        "nonexistent": self.zone.nonexistent, "mapping": self.mapping.name, "dry_run": opts.dry_run})
        printers = self._read_printers()
        self._check_existing_printers(printers)

        def attempt() -> None:
            migration = self._checkpoint()
            self._users(migration)
            schedules = self._printers(migration, printers)
            self._unkeyed(migration)
            self._jobs(migration, schedules)

        def lost_race() -> None:
            log.warning("another writer saved this migration's checkpoint first (a second run?): reloading it "
                        "and resuming from where it says")

        retry_on_conflict(attempt, what=f"replay legacy migration {opts.name}", attempts=3, on_conflict=lost_race)
        self.outcome.migration = None if opts.dry_run else self._load()
        self.outcome.rejects = (self.outcome.migration.rejects if self.outcome.migration else self.rejects)
        self.outcome.seconds = time.monotonic() - started
        if self.zone.overlaps or self.zone.gaps:
            log.info("%d job times fell in the hour the clocks went back (read as the %s), %d in the hour they "
                     "skipped (%s)", self.zone.overlaps, self.zone.ambiguous, self.zone.gaps,
                     "read forward" if self.zone.nonexistent == "forward" else "set aside",
                     extra={"overlaps": self.zone.overlaps, "gaps": self.zone.gaps})
        return self.outcome

    def _load(self) -> LegacyMigration | None:
        mid = migration_id(self.target.app.server_id, self.options.name)
        return self.target.app.repository.get(mid) if mid in self.target.app.repository else None

    def _checkpoint(self) -> LegacyMigration:
        opts = self.options
        found = None if opts.dry_run else self._load()
        if found is None:
            migration = LegacyMigration.start(self.target.app.server_id, name=opts.name, site_zone=self.zone.name,
                                              mapping=self.mapping.name, now=self.target.clock())
            if not opts.dry_run:
                self.target.app.record(migration)
            return migration
        if found.site_zone != self.zone.name:
            raise MigrationMismatch(f"migration {opts.name} was started with site time zone {found.site_zone}, not "
                                    f"{self.zone.name}: resume it with the same zone, or give --name for a new one")
        log.info("resuming migration %s: %d jobs replayed so far, through legacy id %s; %d rows set aside",
                 opts.name, found.jobs, found.through, len(found.rejects),
                 extra={"jobs": found.jobs, "through": found.through, "rejects": len(found.rejects)})
        return found

    def _count_rejects(self, migration: LegacyMigration, new: list[list[Any]]) -> None:
        total = len(migration.rejects) + len(new) if not self.options.dry_run else len(self.rejects) + len(new)
        if total > self.options.max_rejects:
            raise TooManyRejects(f"{total} rows set aside, more than --max-rejects {self.options.max_rejects}: "
                                 f"the mapping is probably wrong (first reasons: "
                                 f"{'; '.join(r[2] for r in (migration.rejects + new)[:3])}). Nothing of the "
                                 f"batch that crossed the limit was written.")

    def _rejected(self, new: list[list[Any]]) -> None:
        self.rejects.extend(new)
        for r in new[:20]:
            log.info("set aside %s %s: %s", r[0], r[1], r[2], extra={"kind": r[0], "legacy_id": r[1], "reason": r[2]})

    # --- users ------------------------------------------------------------------------------

    def _users(self, migration: LegacyMigration) -> None:
        section = self.mapping.users
        if section is None or migration.users_done:
            return
        read = RowReader(section)
        enc = self.mapping.rules.text_encoding
        people: list[tuple[str, dict]] = []
        origins: list[list[str]] = []
        rejects: list[list[Any]] = []
        seen: dict[str, str] = {}
        for rows in src.query(self.conn, section.select(), batch=self.options.batch, what="users"):
            for row in rows:
                key = _shown_key(read.get(row, "key"), enc)
                try:
                    login = clean_name(text(read.get(row, "login"), "login", enc), "login")
                    profile = {f: (text(read.get(row, f), f, enc) or "").strip()[:255]
                               for f in ("full_name", "email", "department") if read.has(f)}
                    if login.lower() in seen:
                        raise Bad(f"login {login} is also user {seen[login.lower()]}")
                except Bad as exc:
                    rejects.append(["user", key, str(exc), "", 0, 0, 0])
                    continue
                seen[login.lower()] = key
                people.append((login, profile))
                origins.append([key, login])
        self._count_rejects(migration, rejects)
        migration.users_replayed(people=origins, rejects=rejects)
        if not self.options.dry_run:
            imported = self.target.import_users(self.target.directory_source, people, migration)
            log.info("users: %d read, %d imported into %s (the others were known already), %d set aside",
                     len(people), len(imported), self.target.directory_source, len(rejects),
                     extra={"read": len(people), "imported": len(imported), "rejected": len(rejects)})
        self._rejected(rejects)

    # --- printers and cost schedules --------------------------------------------------------

    def _read_printers(self) -> LegacyPrinters:
        enc = self.mapping.rules.text_encoding
        names: dict[str, str] = {}
        if self.mapping.printers is not None:
            read = RowReader(self.mapping.printers)
            for rows in src.query(self.conn, self.mapping.printers.select(), what="printers"):
                for row in rows:
                    try:
                        name = clean_name(text(read.get(row, "name"), "printer name", enc), "printer name")
                    except Bad:
                        continue  # a job naming it is set aside with the reason
                    names.setdefault(name.lower(), name)
        by_printer: dict[str, list[tuple[int, CostSchedule]]] = {}
        rejects: list[list[Any]] = []
        section = self.mapping.cost_schedules
        if section is not None:
            read = RowReader(section)
            for rows in src.query(self.conn, section.select(), what="cost settings"):
                for row in rows:
                    try:
                        name = clean_name(text(read.get(row, "printer"), "printer", enc), "printer")
                        start = self.zone.to_micros(moment(read.get(row, "valid_from"),
                                                           self.mapping.rules.time_formats, enc))
                        discount = integer(read.get(row, "duplex_discount_pct")) if read.has(
                            "duplex_discount_pct") else 0
                        mono, colour = money(read.get(row, "mono_page")), money(read.get(row, "colour_page"))
                        if mono is None or colour is None:
                            raise Bad("a page price is NULL")
                        schedule = CostSchedule(mono_page=mono, colour_page=colour,
                                                duplex_discount_pct=discount or 0)
                    except (Bad, ValueError) as exc:
                        rejects.append(["cost setting", f"{text(read.get(row, 'printer'), 'printer', 'latin-1')}",
                                        str(exc), "", 0, 0, 0])
                        continue
                    names.setdefault(name.lower(), name)
                    by_printer.setdefault(name.lower(), []).append((start, schedule))
        return LegacyPrinters(names, by_printer, rejects)

    def _check_existing_printers(self, legacy: LegacyPrinters) -> None:
        """Refuse, before anything is written, to change the price of a printer PageLedger has
        already, unless the operator chose what happens to it."""
        replayed = self._load()
        done = replayed.printers if replayed is not None else {}
        priced = [legacy.names[k] for k in sorted(legacy.by_printer) if k not in done]
        found = self.target.replay_schedules.existing(priced)
        if not found:
            return
        choice = self.options.existing_printers
        shown = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
        if choice == "refuse":
            raise ExistingPrinters(
                f"{len(found)} printers with legacy cost settings exist in PageLedger already ({shown}): replaying "
                f"their schedules would make the newest legacy one their price from now on. Run again with "
                f"--existing-printers keep-price (the legacy schedules are recorded and price the migrated jobs, "
                f"their current price stays) or --existing-printers take-legacy-price. Nothing was written.")
        log.warning("%d printers exist in PageLedger already (%s): %s", len(found), shown,
                    "their current price stays, the legacy schedules are recorded before it" if choice == "keep-price"
                    else "the newest legacy schedule becomes their price",
                    extra={"existing_printers": found, "choice": choice})

    def _printers(self, migration: LegacyMigration, legacy: LegacyPrinters) -> Schedules:
        names, by_printer, rejects = legacy.names, legacy.by_printer, legacy.rejects
        keep_current = self.options.existing_printers == "keep-price"
        schedules = Schedules()
        if rejects and not migration.printers:
            self._count_rejects(migration, rejects)
        for key, name in sorted(names.items()):
            entries = sorted(by_printer.get(key, []), key=lambda e: e[0])
            starts, priced = [s for s, _ in entries], [p for _, p in entries]
            versions = migration.printers.get(key)
            if versions is None:
                if self.options.dry_run:
                    versions = list(range(1, len(priced) + 1))
                    migration.printer_replayed(name=name, versions=versions)
                else:
                    versions = self.target.replay_schedules.planned_versions(name, len(priced))
                    first_step = not migration.printers
                    migration.printer_replayed(name=name, versions=versions)
                    if first_step and rejects:  # the cost-setting rejects go with the first printer's step
                        migration.jobs_replayed(through=migration.through, jobs=0, rejects=rejects)
                        self._rejected(rejects)
                    got = self.target.replay_schedules(name, priced, migration, keep_current=keep_current)
                    if got != versions:
                        raise IntegrityError(f"printer {name} changed while its schedules were replayed")
                    log.info("printer %s: %d legacy cost schedules in force as versions %s", name, len(priced),
                             versions, extra={"printer": name, "versions": versions})
            if priced:
                schedules.add(name, starts, priced, versions)
        if self.options.dry_run:
            self._rejected(rejects)
        return schedules

    # --- jobs -------------------------------------------------------------------------------

    def _key_sql(self) -> str:
        return self.mapping.jobs.values["key"].sql  # type: ignore[return-value]

    def _duplicates(self) -> set[Any]:
        jobs = self.mapping.jobs
        key = self._key_sql()
        where = " AND ".join(f"({w})" for w in (jobs.where, f"{key} IS NOT NULL") if w)
        sql = f"SELECT {key} FROM {jobs.source} WHERE {where} GROUP BY {key} HAVING COUNT(*) > 1"
        found = {k for rows in src.query(self.conn, sql, what="duplicate legacy ids") for (k,) in rows}
        if found:
            log.warning("%d legacy job ids occur more than once: every row with one of them is set aside",
                        len(found), extra={"duplicate_ids": len(found)})
        return found

    def _unkeyed(self, migration: LegacyMigration) -> None:
        if migration.null_keys_done:
            return
        parser = JobRows(self.mapping, self.zone, self.target.clock(), Schedules())
        rejects = []
        sql = self.mapping.jobs.select(extra_where=f"{self._key_sql()} IS NULL")
        for rows in src.query(self.conn, sql, what="job rows without an id"):
            for row in rows:
                f = parser.figures(row)
                rejects.append(["job", "", "no legacy id (NULL): the row cannot be told apart from others",
                                f.month, f.impressions, f.sheets, f.cost])
        self._count_rejects(migration, rejects)
        migration.unkeyed_rejected(rejects=rejects)
        if not self.options.dry_run:
            self.target.app.record(migration)
        self._rejected(rejects)

    def _jobs(self, migration: LegacyMigration, schedules: Schedules) -> None:
        opts = self.options
        parser = JobRows(self.mapping, self.zone, self.target.clock(), schedules, self._duplicates())
        key = self._key_sql()
        after = migration.through
        condition = f"{key} IS NOT NULL" + (f" AND {key} > ?" if after is not None else "")
        params = (after,) if after is not None else ()
        remaining = _count(src.scalar(self.conn, f"SELECT COUNT(*) FROM {self.mapping.jobs.source} WHERE "
                               + " AND ".join(f"({w})" for w in (self.mapping.jobs.where, condition) if w), params))
        log.info("jobs: %s legacy rows to replay%s", f"{remaining:,}",
                 f" after legacy id {after}" if after is not None else "", extra={"rows": remaining})
        sql = self.mapping.jobs.select(extra_where=condition, order_by=key)
        bar = tqdm(total=remaining, unit=" rows", unit_scale=True, desc="jobs", dynamic_ncols=True,
                   disable=None if opts.progress is None else not opts.progress, mininterval=0.5)
        done = rejected = 0
        started = last_log = time.monotonic()
        writer = None if opts.dry_run else _BatchWriter(
            lambda jobs, checkpoint: self.target.record_jobs(opts.name, jobs, checkpoint))
        try:
            pages = src.prefetched(src.query(self.conn, sql, params, batch=opts.batch, what="jobs"))
            for batch in _unsplit(pages, parser.key, opts.batch):
                jobs: list[MigratedJob] = []
                rejects: list[list[Any]] = []
                for row in batch:
                    try:
                        jobs.append(parser.job(row))
                    except Bad as exc:
                        f = parser.figures(row)
                        rejects.append(["job", parser.legacy_id(row), str(exc), f.month, f.impressions, f.sheets,
                                        f.cost])
                self._count_rejects(migration, rejects)
                through = _storable_key(parser.key(batch[-1]))
                migration.jobs_replayed(through=through, jobs=len(jobs), rejects=rejects)
                if opts.dry_run:
                    for j in jobs:
                        t = self.outcome.accepted.setdefault(self.zone.month_of(j.submitted_at), [0, 0, 0, 0])
                        t[0] += j.pages * j.copies
                        t[1] += _sheets(j)
                        t[2] += j.cost
                        t[3] += 1
                else:
                    writer.put(jobs, _Checkpoint(migration.collect_events()))  # type: ignore[union-attr]
                self.outcome.jobs_recorded += len(jobs)
                self._rejected(rejects)
                done += len(batch)
                rejected += len(rejects)
                bar.update(len(batch))
                now = time.monotonic()
                if now - last_log >= PROGRESS_LOG_SECONDS:
                    last_log = now
                    rate = done / (now - started)
                    log.info("jobs: %s of %s rows (%s/s, about %s left), %d set aside", f"{done:,}",
                             f"{remaining:,}", f"{rate:,.0f}", _duration((remaining - done) / rate if rate else 0),
                             rejected, extra={"done": done, "rows": remaining, "per_second": round(rate),
                                              "rejected": rejected})
        finally:
            bar.close()
            if writer is not None:
                writer.close()  # the batches checked so far are recorded (or its error raised) before this returns
        elapsed = time.monotonic() - started
        log.info("jobs: %s rows read in %.1f s (%s/s): %s %s, %d set aside", f"{done:,}", elapsed,
                 f"{done / elapsed:,.0f}" if elapsed else "-", f"{done - rejected:,}",
                 "would be recorded" if opts.dry_run else "recorded", rejected,
                 extra={"done": done, "seconds": round(elapsed, 2), "rejected": rejected})


class _Checkpoint:
    """The checkpoint events of one batch, taken from the migration aggregate when the batch was
    checked, so the writer thread saves exactly them with it while the aggregate moves on."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events

    def collect_events(self) -> list[Any]:
        events, self.events = self.events, []
        return events


class _BatchWriter:
    """Records the checked batches in a thread of its own, in order, with at most one waiting:
    the database stores batch N (PostgreSQL in its own process, SQLite without the interpreter
    lock) while the migration checks batch N+1. Each batch is still one transaction with its
    checkpoint, so a kill leaves the same clean resume point. A writer's error is raised in the
    migration's thread at its next `put` or at `close`; batches queued after it are not written."""

    def __init__(self, record: Callable[[list[MigratedJob], _Checkpoint], object]) -> None:
        self.record = record
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="legacy-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                try:
                    self.record(*item)
                except BaseException as exc:  # noqa: BLE001 - raised in the migration's thread
                    self.error = exc

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def put(self, jobs: list[MigratedJob], checkpoint: _Checkpoint) -> None:
        self._raise()
        self.queue.put((jobs, checkpoint))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self._raise()


def _count(value: Any) -> int:
    """A COUNT(*) as the driver returns it (SQLite's hands over text)."""
    return integer(value) or 0


def _sheets(j: MigratedJob) -> int:
    return sheets_for(pages=j.pages, copies=j.copies, duplex=j.duplex)


def _unsplit(pages: Iterator[list[tuple]], key: Callable[[tuple], Any], size: int) -> Iterator[list[tuple]]:
    """Batches of about `size` rows that never split rows of one key between two batches (so a
    batch's last key is a resume point that no row of it lies beyond)."""
    pending: list[tuple] = []
    for rows in pages:
        pending.extend(rows)
        while len(pending) > size:
            cut = size
            while cut < len(pending) and key(pending[cut]) == key(pending[cut - 1]):
                cut += 1
            if cut == len(pending):
                break
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


def _storable_key(key: Any) -> Any:
    if isinstance(key, bool) or key is None:
        return key
    if isinstance(key, int):
        return key
    if isinstance(key, Decimal) and key == key.to_integral_value():
        return int(key)
    if isinstance(key, bytes):
        return key.decode("utf-8", "surrogateescape")
    return str(key)


def _shown_key(key: Any, encoding: str) -> str:
    if key is None:
        return ""
    if isinstance(key, bytes):
        return key.decode(encoding, "replace")
    return str(key)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


