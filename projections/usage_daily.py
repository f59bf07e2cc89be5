"""Daily usage totals per user and printer (what most reports read instead of every job), and
the query that groups them by user, printer or day."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import sqlalchemy as sa

from adapters.codec import short_topic
from domain.jobs import PrintJob
from domain.units import day_of
from projections.follower import Projection, metadata
from projections.jobs import LAST_SHOWN_DAY
from projections.names import KeyTable, printer_keys, user_keys
from projections.sql import add_to_totals

usage_daily = sa.Table(
    "usage_daily", metadata,
    sa.Column("day", sa.Integer, primary_key=True),  # days since 1970-01-01 (UTC), domain.units.day_of
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("printer_id", sa.Integer, primary_key=True),
    sa.Column("pages", sa.BigInteger, nullable=False),  # impressions, all copies
    sa.Column("sheets", sa.BigInteger, nullable=False),
    sa.Column("colour_pages", sa.BigInteger, nullable=False),
    sa.Column("jobs", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

KEYS = ("day", "user_id", "printer_id")
COLUMNS = (*KEYS, "pages", "sheets", "colour_pages", "jobs", "cost")


class UsageDailyProjection(Projection):
    name = "usage_daily"
    # A job on a secure queue (PrintJob.Secured) counts only once it printed, on that day, at
    # the printer it printed on: PrintJob.Printed repeats its figures for that.
    topics = (short_topic(PrintJob.Tracked), short_topic(PrintJob.Printed))
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
            # A time outside 1970..9999 (a client's clock, a bug) counts on the nearest day shown.
            when = e.at if e.event_class is PrintJob.Printed else e.submitted_at
            key = (min(max(day_of(when), 0), LAST_SHOWN_DAY), user_ids[e.user], printer_ids[e.printer])
            t = totals.setdefault(key, [0, 0, 0, 0, 0])
            t[0] += e.pages * e.copies
            t[1] += e.sheets
            t[2] += e.colour_pages * e.copies
            t[3] += 1
            t[4] += e.cost
        add_to_totals(conn, usage_daily, KEYS, COLUMNS, [(*key, *t) for key, t in sorted(totals.items())])


# --- queries --------------------------------------------------------------------------------

GROUPS = ("user", "printer", "day")


@dataclass(frozen=True)
class UsageTotal:
    """Totals of one group: `key` is a login, a printer name or a day number."""

    key: str | int
    jobs: int
    pages: int
    sheets: int
    colour_pages: int
    cost: int  # 1/10,000 currency unit


def usage_totals(conn: sa.Connection, group_by: str, *, user: str | None = None,
                 since_day: int | None = None, until_day: int | None = None) -> list[UsageTotal]:
    """Totals of jobs, pages, sheets, colour pages and cost, grouped by user, printer or day."""
    key = {"user": user_keys.c.login, "printer": printer_keys.c.name, "day": usage_daily.c.day}[group_by]
    u = usage_daily
    q = (sa.select(key.label("key"), sa.func.sum(u.c.jobs), sa.func.sum(u.c.pages), sa.func.sum(u.c.sheets),
                   sa.func.sum(u.c.colour_pages), sa.func.sum(u.c.cost))
         .join(user_keys, user_keys.c.id == u.c.user_id)
         .join(printer_keys, printer_keys.c.id == u.c.printer_id)
         .group_by(key).order_by(key))
    if user is not None:
        q = q.where(user_keys.c.login == user)
    if since_day is not None:
        q = q.where(u.c.day >= since_day)
    if until_day is not None:
        q = q.where(u.c.day < until_day)
    return [UsageTotal(min(max(int(k), 0), LAST_SHOWN_DAY) if group_by == "day" else k, int(n), int(pages),
                       int(sheets), int(colour), int(cost))
            for k, n, pages, sheets, colour, cost in conn.execute(q)]
