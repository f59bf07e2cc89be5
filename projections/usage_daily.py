"""Daily usage totals per user and printer: what most reports read instead of every job."""
from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from domain.jobs import PrintJob
from pageledger.codec import short_topic
from projections.follower import Projection
from projections.sql import KeyTable, add_to_totals
from projections.tables import printer_keys, usage_daily, user_keys

MICROS_PER_DAY = 86_400_000_000


class UsageDailyProjection(Projection):
    name = "usage_daily"
    topics = (short_topic(PrintJob.Tracked),)
    tables = (usage_daily,)

    def __init__(self) -> None:
        self.users = KeyTable(user_keys, "login")
        self.printers = KeyTable(printer_keys, "name")
        self.key_tables = (self.users, self.printers)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        user_ids = self.users.ids(conn, {e.user for _, e in events})
        printer_ids = self.printers.ids(conn, {e.printer for _, e in events})
        totals: dict[tuple[int, int, int], list[int]] = {}
        for _, e in events:
            key = (e.submitted_at // MICROS_PER_DAY, user_ids[e.user], printer_ids[e.printer])
            t = totals.setdefault(key, [0, 0, 0, 0, 0])
            t[0] += e.pages * e.copies
            t[1] += e.sheets
            t[2] += e.colour_pages * e.copies
            t[3] += 1
            t[4] += e.cost
        add_to_totals(conn, usage_daily, KEYS, COLUMNS, [(*key, *t) for key, t in sorted(totals.items())])


KEYS = ("day", "user_id", "printer_id")
COLUMNS = (*KEYS, "pages", "sheets", "colour_pages", "jobs", "cost")
