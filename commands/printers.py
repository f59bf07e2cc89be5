"""Printers: cost schedules, secure hold, and the cache that prices jobs without a read per job."""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from domain.costs import CostSchedule
from domain.printers import Printer, printer_id


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

    def __call__(self, name: str, schedule: CostSchedule) -> int:
        """Returns the schedule's version."""
        def attempt() -> Printer:
            pid = printer_id(self.app.server_id, name)
            if pid in self.app.repository:
                printer: Printer = self.app.repository.get(pid)
                printer.change_cost_schedule(schedule.to_dict())
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

    def __call__(self, name: str, secure: bool) -> None:
        def attempt() -> None:
            printer = _load_or_register(self.app, name, self.printers.default_schedule)
            if printer.secure != secure:
                printer.change_secure_hold(secure)
            self.app.save(printer)

        retry_on_conflict(attempt, what=f"change secure hold of printer {name}")
        self.printers.invalidate(name)


def _load_or_register(app: PageLedger, name: str, schedule: CostSchedule) -> Printer:
    pid = printer_id(app.server_id, name)
    if pid in app.repository:
        return app.repository.get(pid)
    return Printer.register(pid, name, schedule)

