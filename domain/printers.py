"""Printer: a print queue PageLedger accounts for, and the cost schedule in force on it."""
from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.costs import CostSchedule


def printer_id(server_id: str, name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:printer:{name.lower()}")


class Printer(Aggregate):
    """A print queue. Registered the first time a job for it is tracked, or by an admin."""

    @event("Registered")
    def __init__(self, name: str, schedule: dict) -> None:
        self.name = name
        self.schedule = CostSchedule.from_dict(schedule)
        self.schedule_version = 1
        self.secure = False

    @classmethod
    def register(cls, printer_id: UUID, name: str, schedule: CostSchedule) -> "Printer":
        return cls._create(cls.Registered, id=printer_id, name=name, schedule=schedule.to_dict())

    @event("CostScheduleChanged")
    def change_cost_schedule(self, schedule: dict) -> None:
        self.schedule = CostSchedule.from_dict(schedule)
        self.schedule_version += 1

    @event("SecureHoldChanged")
    def change_secure_hold(self, secure: bool) -> None:
        self.secure = secure
