"""Admin use cases on printers: cost schedules and secure hold."""
from __future__ import annotations

from commands.application import PageLedger
from domain.costs import CostSchedule
from domain.printers import Printer, printer_id


def set_cost_schedule(app: PageLedger, name: str, schedule: CostSchedule) -> int:
    """Put `schedule` in force on printer `name` (registering it if new). Returns its version."""
    pid = printer_id(app.server_id, name)
    if pid in app.repository:
        printer: Printer = app.repository.get(pid)
        printer.change_cost_schedule(schedule.to_dict())
    else:
        printer = Printer.register(pid, name, schedule)
    app.save(printer)
    return printer.schedule_version
