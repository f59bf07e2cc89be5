"""Printers: cost schedules, secure hold, and the cache that prices jobs without a read per job."""
from __future__ import annotations

import threading
from dataclasses import dataclass
import time
from typing import Callable, Iterable

from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from domain.costs import CostSchedule
from commands.validation import InvalidRequest
from domain.printers import CODE_MODES, MAX_HOLD_SECONDS, Printer, printer_id


class PrinterCache:
    """The printers a batch needs, loaded from the event store at most every `ttl` seconds.

    Loading 40 printers for each 500-job batch cost more than recording the jobs. A changed cost
    schedule therefore prices jobs from at most `ttl` seconds after it was saved (at once in
    the process that saved it: SetCostSchedule invalidates its entry); every job records the schedule version that
    priced it, so the record stays exact about which prices applied.
    """

    def __init__(self, app: PageLedger, default_schedule: CostSchedule, ttl: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.default_schedule = default_schedule
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, Printer]] = {}
        self._lock = threading.Lock()

    def for_names(self, names: Iterable[str]) -> tuple[dict[str, Printer], list[Printer]]:
        """Printers by lower-cased name, and the new ones (registered with the default schedule,
        not yet saved: save them with the jobs, then call `registered`)."""
        now = self.clock()
        found: dict[str, Printer] = {}
        new: list[Printer] = []
        for name in names:
            key = name.lower()
            if key in found:
                continue
            with self._lock:
                entry = self._entries.get(key)
            if entry and entry[0] > now:
                found[key] = entry[1]
                continue
            pid = printer_id(self.app.server_id, name)
            if pid in self.app.repository:
                printer = self.app.repository.get(pid)
                with self._lock:
                    self._entries[key] = (now + self.ttl, printer)
            else:
                printer = Printer.register(pid, name, self.default_schedule)
                new.append(printer)
            found[key] = printer
        return found, new

    def registered(self, printers: Iterable[Printer]) -> None:
        expires = self.clock() + self.ttl
        with self._lock:
            for p in printers:
                self._entries[p.name.lower()] = (expires, p)

    def forget(self, printers: Iterable[Printer]) -> None:
        with self._lock:
            for p in printers:
                self._entries.pop(p.name.lower(), None)

    def schedule_of(self, name: str) -> CostSchedule:
        """The cost schedule in force on a printer now (the default one for a printer never
        registered); what the savings and printer-list reports price with."""
        found, new = self.for_names([name])
        printer = found.get(name.lower()) or (new[0] if new else None)
        return printer.schedule if printer is not None else self.default_schedule

    def invalidate(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._entries.clear()
            else:
                self._entries.pop(name.lower(), None)


class SetCostSchedule:
    """Put a cost schedule in force on a printer (registering it if new). The next batch this
    process tracks is priced with it at once; other processes' caches see it within `ttl`."""

    def __init__(self, app: PageLedger, printers: PrinterCache) -> None:
        self.app = app
        self.printers = printers

    def __call__(self, name: str, schedule: CostSchedule, by: str = "") -> int:
        """Returns the schedule's version. `by`: the admin (login, or "cli")."""
        def attempt() -> Printer:
            pid = printer_id(self.app.server_id, name)
            if pid in self.app.repository:
                printer: Printer = self.app.repository.get(pid)
                printer.change_cost_schedule(schedule.to_dict(), by=by)
            else:
                printer = Printer.register(pid, name, schedule)
            self.app.save(printer)
            return printer

        printer = retry_on_conflict(attempt, what=f"change the cost schedule of printer {name}")
        self.printers.invalidate(name)
        return printer.schedule_version


class SetSecureHold:
    """Make a printer a secure queue (its jobs are held until released) or an ordinary one."""

    def __init__(self, app: PageLedger, printers: PrinterCache) -> None:
        self.app = app
        self.printers = printers

    def __call__(self, name: str, secure: bool, by: str = "") -> None:
        def attempt() -> None:
            printer = _load_or_register(self.app, name, self.printers.default_schedule)
            if printer.secure != secure:
                printer.change_secure_hold(secure, by=by)
            self.app.save(printer)

        retry_on_conflict(attempt, what=f"change secure hold of printer {name}")
        self.printers.invalidate(name)


@dataclass(frozen=True)
class ReleaseSettings:
    """A secure queue's release settings; None leaves a setting as it is."""

    hold_seconds: int | None = None
    code_mode: str | None = None
    code_length: int | None = None
    group: str | None = None
    card_reader: dict | None = None


class SetReleaseSettings:
    """Change a queue's hold time, release-code mode, printer group or card reader: one event
    per setting that changes (HoldTimeChanged, ReleaseCodeModeChanged, PrinterGroupChanged,
    CardReaderAssociated)."""

    def __init__(self, app: PageLedger, printers: PrinterCache) -> None:
        self.app = app
        self.printers = printers

    def __call__(self, name: str, s: ReleaseSettings, by: str = "") -> Printer:
        errors: dict[str, list[str]] = {}
        if s.hold_seconds is not None and not 60 <= s.hold_seconds <= MAX_HOLD_SECONDS:
            errors["hold_seconds"] = [f"between 60 and {MAX_HOLD_SECONDS} seconds"]
        if s.code_mode is not None and s.code_mode not in CODE_MODES:
            errors["code_mode"] = [f"one of {', '.join(CODE_MODES)}"]
        if s.code_length is not None and not 4 <= s.code_length <= 12:
            errors["code_length"] = ["between 4 and 12 digits"]
        if s.group is not None and (len(s.group) > 64 or any(not c.isprintable() for c in s.group)):
            errors["group"] = ["at most 64 printable characters"]
        if errors:
            raise InvalidRequest(errors)

        def attempt() -> Printer:
            p = _load_or_register(self.app, name, self.printers.default_schedule)
            if s.hold_seconds is not None and s.hold_seconds != p.hold_seconds:
                p.change_hold_time(s.hold_seconds, by=by)
            mode = s.code_mode if s.code_mode is not None else p.code_mode
            length = s.code_length if s.code_length is not None else p.code_length
            if (mode, length) != (p.code_mode, p.code_length):
                p.change_release_code_mode(mode, length, by=by)
            if s.group is not None and s.group.strip() != p.group:
                p.change_group(s.group.strip(), by=by)
            if s.card_reader is not None and s.card_reader != p.card_reader:
                p.associate_card_reader(s.card_reader, by=by)
            self.app.save(p)
            return p

        printer = retry_on_conflict(attempt, what=f"change the release settings of printer {name}")
        self.printers.invalidate(name)
        return printer


def _load_or_register(app: PageLedger, name: str, schedule: CostSchedule) -> Printer:
    pid = printer_id(app.server_id, name)
    if pid in app.repository:
        return app.repository.get(pid)
    return Printer.register(pid, name, schedule)



class ReplayLegacySchedules:
    """Put a printer's legacy cost schedules in force, oldest first, as SetCostSchedule does one
    (registering the printer with the first), saved with `progress` (the migration's record of
    it) in one transaction. Returns the PageLedger version of each schedule, in order.

    On a printer PageLedger already has, the newest legacy schedule would become its price from
    now on. The caller decides (tools/pa6_migrate asks the operator, `existing`): with
    `keep_current` the printer's schedule in force is put back as the newest version after the
    legacy ones, so they are recorded (and priced the migrated jobs) without changing its price.
    """

    def __init__(self, app: PageLedger, printers: PrinterCache) -> None:
        self.app = app
        self.printers = printers

    def existing(self, names: list[str]) -> list[str]:
        """Those of `names` that are printers PageLedger has already."""
        return [n for n in names if printer_id(self.app.server_id, n) in self.app.repository]

    def planned_versions(self, name: str, count: int) -> list[int]:
        """The versions `count` schedules will get on the printer as it stands now."""
        pid = printer_id(self.app.server_id, name)
        if pid in self.app.repository:
            start = self.app.repository.get(pid).schedule_version + 1
        else:
            start = 1  # registered with the first (or with the default schedule when there is none)
        return list(range(start, start + count))

    def __call__(self, name: str, schedules: list[CostSchedule], progress: object,
                 keep_current: bool = False) -> list[int]:
        pid = printer_id(self.app.server_id, name)
        if pid in self.app.repository:
            printer: Printer = self.app.repository.get(pid)
            current = printer.schedule
            for schedule in schedules:
                printer.change_cost_schedule(schedule.to_dict())
            versions = list(range(printer.schedule_version - len(schedules) + 1, printer.schedule_version + 1))
            if keep_current and schedules:
                printer.change_cost_schedule(current.to_dict())
        else:
            # A printer with no legacy schedule gets the default one, as a job's first sight of it would.
            printer = Printer.register(pid, name, schedules[0] if schedules else self.printers.default_schedule)
            for schedule in schedules[1:]:
                printer.change_cost_schedule(schedule.to_dict())
            versions = list(range(1, len(schedules) + 1))
        self.app.record(printer, progress)  # type: ignore[arg-type]
        self.printers.invalidate(name)
        return versions
