"""The "Job Accounting" table: one narrow row per tracked job."""
from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from domain.jobs import PrintJob
from pageledger.codec import short_topic
from projections.follower import Projection
from projections.sql import KeyTable, insert_rows
from projections.tables import JOB_DENIED, JOB_TRACKED, host_keys, jobs, printer_keys, user_keys


class JobsProjection(Projection):
    name = "jobs"
    topics = (short_topic(PrintJob.Tracked), short_topic(PrintJob.Denied))
    tables = (jobs,)

    def __init__(self) -> None:
        self.users = KeyTable(user_keys, "login")
        self.printers = KeyTable(printer_keys, "name")
        self.hosts = KeyTable(host_keys, "name")
        self.key_tables = (self.users, self.printers, self.hosts)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        user_ids = self.users.ids(conn, {e.user for _, e in events})
        printer_ids = self.printers.ids(conn, {e.printer for _, e in events})
        host_ids = self.hosts.ids(conn, {e.client_host for _, e in events})
        insert_rows(conn, jobs, COLUMNS, [
            (seq, e.submitted_at, e.size, e.cost, user_ids[e.user], printer_ids[e.printer], host_ids[e.client_host],
             e.pages, e.sheets, e.colour_pages, e.copies,
             JOB_DENIED if e.event_class is PrintJob.Denied else JOB_TRACKED, e.duplex, e.paper, e.pdl, e.document)
            for seq, e in events
        ])


COLUMNS = ("seq", "submitted_at", "size", "cost", "user_id", "printer_id", "host_id", "pages", "sheets",
           "colour_pages", "copies", "status", "duplex", "paper", "pdl", "document")
