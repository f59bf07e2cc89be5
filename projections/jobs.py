"""The "Job Accounting" table: one narrow row per tracked job."""
from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from domain.jobs import PrintJob
from pageledger.codec import short_topic
from projections.follower import Projection
from projections.sql import KeyTable
from projections.tables import JOB_DENIED, JOB_TRACKED, jobs, printer_keys, user_keys


class JobsProjection(Projection):
    name = "jobs"
    topics = (short_topic(PrintJob.Tracked), short_topic(PrintJob.Denied))
    tables = (jobs,)

    def __init__(self) -> None:
        self.users = KeyTable(user_keys, "login")
        self.printers = KeyTable(printer_keys, "name")
        self.key_tables = (self.users, self.printers)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        user_ids = self.users.ids(conn, {e.user for _, e in events})
        printer_ids = self.printers.ids(conn, {e.printer for _, e in events})
        conn.execute(jobs.insert(), [
            {
                "seq": seq, "user_id": user_ids[e.user], "printer_id": printer_ids[e.printer],
                "submitted_at": e.submitted_at, "pages": e.pages, "copies": e.copies,
                "sheets": e.sheets, "colour_pages": e.colour_pages, "duplex": e.duplex,
                "paper": e.paper, "size": e.size, "pdl": e.pdl, "cost": e.cost,
                "status": JOB_DENIED if isinstance(e, PrintJob.Denied) else JOB_TRACKED, "client_host": e.client_host, "document": e.document,
            }
            for seq, e in events
        ])
