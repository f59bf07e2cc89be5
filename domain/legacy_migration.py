"""LegacyMigration: one replay of a legacy print-accounting database (tools/pa6_migrate).

It is the migration's own record, kept in the event log beside what it replays: each step
(the users, one printer's cost schedules, a batch of jobs) is saved in the same transaction as
the events it replays, with how far through the legacy rows it got and the rows it set aside.
A run that is killed therefore resumes exactly after its last saved step (no gap, no double),
and two runs at once cannot both save a step: the second one's version conflicts.
"""
from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


def migration_id(server_id: str, name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:legacy-migration:{name}")


class LegacyMigration(Aggregate):
    """Progress of one legacy migration: steps done, the jobs checkpoint, rows set aside.

    A reject is a list [what ("job", "user", "cost setting"), legacy id, reason, month "YYYY-MM"
    or "", impressions, sheets, cost]: a job's figures as far as they could be read, so that
    reconciliation can list the rows set aside with their totals.
    """

    @event("Started")
    def __init__(self, name: str, site_zone: str, mapping: str, at: int) -> None:
        self.name = name
        self.site_zone = site_zone
        self.mapping = mapping
        self.started_at = at
        self.users_done = False
        self.users = 0
        self.printers: dict[str, list[int]] = {}  # printer name -> PageLedger schedule versions, legacy order
        self.null_keys_done = False
        self.through: Any = None  # the last legacy job key replayed (rows are read in key order)
        self.jobs = 0
        self.rejects: list[list[Any]] = []

    @classmethod
    def start(cls, server_id: str, *, name: str, site_zone: str, mapping: str, now: int) -> "LegacyMigration":
        return cls._create(cls.Started, id=migration_id(server_id, name), name=name, site_zone=site_zone,
                           mapping=mapping, at=now)

    @event("UsersReplayed")
    def users_replayed(self, people: list, rejects: list) -> None:
        """`people`: [legacy user id, login] of every user replayed: the record of where each came from."""
        self.users_done = True
        self.users = len(people)
        self.rejects.extend(rejects)

    @event("PrinterReplayed")
    def printer_replayed(self, name: str, versions: list) -> None:
        self.printers[name.lower()] = list(versions)

    @event("UnkeyedRejected")
    def unkeyed_rejected(self, rejects: list) -> None:
        """Job rows without a legacy id: set aside before the keyed rows are read in key order."""
        self.null_keys_done = True
        self.rejects.extend(rejects)

    @event("JobsReplayed")
    def jobs_replayed(self, through: Any, jobs: int, rejects: list) -> None:
        self.through = through
        self.jobs += jobs
        self.rejects.extend(rejects)
