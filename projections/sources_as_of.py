"""What reports read besides the read models — the site settings and each printer's cost
schedule — as they stood at an instant, for the audit's reports as of that instant.

Both are aggregates in the log (domain.site_settings.SiteSettings, domain.printers.Printer):
each is loaded at its last version recorded at or before the instant (the same "recorded at or
before" that projections.replay.replay_as_of applies to the read models), by its aggregate id,
never by a scan of the log. A setting never changed by then has its default; a printer not yet
registered then is priced with the default schedule a new printer gets.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping
from uuid import UUID

from eventsourcing.application import Application

from domain.costs import CostSchedule
from domain.printers import printer_id
from domain.site_settings import FIELDS, site_settings_id
from domain.units import to_micros
from projections.reports import ReportSources


def version_at(app: Application, aggregate_id: UUID, instant_us: int) -> int | None:
    """The aggregate's last version recorded at or before `instant_us` (None: none by then)."""
    found = None
    for event in app.events.get(aggregate_id):
        if to_micros(event.timestamp) > instant_us:
            break
        found = event.originator_version
    return found


def aggregate_at(app: Application, aggregate_id: UUID, instant_us: int) -> Any | None:
    version = version_at(app, aggregate_id, instant_us)
    return None if version is None else app.repository.get(aggregate_id, version=version)


def settings_at(app: Application, server_id: str, instant_us: int) -> dict[str, Any]:
    """Every site setting's value as it stood at `instant_us` (defaults for those unchanged by then)."""
    settings = aggregate_at(app, site_settings_id(server_id), instant_us)
    return {name: (settings.value(name) if settings is not None else spec.default) for name, spec in FIELDS.items()}


def sources_at(app: Application, server_id: str, instant_us: int, default_schedule: CostSchedule) -> ReportSources:
    """ReportSources as they stood at `instant_us` (the settings read once; schedules per printer, once each)."""
    settings = settings_at(app, server_id, instant_us)
    schedules: dict[str, CostSchedule] = {}

    def schedule_of(name: str) -> CostSchedule:
        key = name.lower()
        if key not in schedules:
            printer = aggregate_at(app, printer_id(server_id, name), instant_us)
            schedules[key] = printer.schedule if printer is not None else default_schedule
        return schedules[key]

    frozen: Mapping[str, Any] = dict(settings)
    get_settings: Callable[[], Mapping[str, Any]] = lambda: dict(frozen)
    return ReportSources(settings=get_settings, schedule_of=schedule_of)
