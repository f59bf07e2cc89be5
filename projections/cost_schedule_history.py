"""A printer's cost schedules over time: each version with its prices and when it took effect.

Read from the log itself, as the audit's admin changes are (schedules change a few times a
printer's life; a read model would be one more thing to keep): the printer's `Registered` and
`CostScheduleChanged` events, found by its aggregate id (the events table's key), never a scan
of the log. Version 1 is the schedule it was registered with, each change the next version —
the `schedule_version` every job records.
"""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from adapters.codec import short_topic
from domain.costs import CostSchedule
from domain.printers import Printer
from projections.event_history import EventHistory

SCHEDULE_TOPICS = (short_topic(Printer.Registered), short_topic(Printer.CostScheduleChanged))
MAX_SCHEDULE_EVENTS = 10_000


@dataclass(frozen=True)
class ScheduleVersion:
    version: int
    schedule: CostSchedule
    since_us: int  # when it took effect: when it was recorded, µs


def schedule_history(history: EventHistory, printer: UUID, *, newest: int = 10) -> list[ScheduleVersion]:
    """The printer's `newest` schedule versions, newest first ([] for a printer never saved)."""
    rows = history.log.select(after=0, limit=MAX_SCHEDULE_EVENTS, topics=SCHEDULE_TOPICS, originator=printer)
    versions = []
    for number, raw in enumerate(rows, start=1):
        if number <= len(rows) - newest:
            continue  # decode only what is shown
        event = history.decode(raw)
        versions.append(ScheduleVersion(number, CostSchedule.from_dict(event.fields["schedule"]), event.recorded_us))
    return versions[::-1]
