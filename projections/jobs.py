"""The "Job Accounting" table: one narrow row per tracked job."""
from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from domain.jobs import PrintJob
from pageledger.codec import short_topic
from projections.follower import Projection
from projections.sql import KeyTable, insert_rows
from projections.tables import JOB_TRACKED, jobs, printer_keys, user_keys


class JobsProjection(Projection):
    name = "jobs"
    topics = (short_topic(PrintJob.Tracked),)
    tables = (jobs,)

    def __init__(self) -> None:
        self.users = KeyTable(user_keys, "login")
        self.printers = KeyTable(printer_keys, "name")
        self.key_tables = (self.users, self.printers)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        user_ids = self.users.ids(conn, {e.user for _, e in events})
        printer_ids = self.printers.ids(conn, {e.printer for _, e in events})
        insert_rows(conn, jobs, COLUMNS, [
            (seq, user_ids[e.user], printer_ids[e.printer], e.submitted_at, e.pages, e.copies, e.sheets,
             e.colour_pages, e.duplex, e.paper, e.size, e.pdl, e.cost, JOB_TRACKED, e.client_host, e.document)
            for seq, e in events
        ])


COLUMNS = ("seq", "user_id", "printer_id", "submitted_at", "pages", "copies", "sheets", "colour_pages", "duplex",
           "paper", "size", "pdl", "cost", "status", "client_host", "document")
