"""The event store: the eventsourcing Application that saves and loads every PageLedger aggregate,
with the compact mapper (adapters.codec) and the recorder the database URL picked (adapters.stores)."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Sequence

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper

from adapters.codec import CompactMapper, MsgpackTranscoder
from adapters.personal_keys import PersonalKeys, SubjectKeys
from adapters.sqlite_writes import LockingSQLiteRecorder, write_lock


class PageLedger(Application):
    """Saves and loads aggregates; its event store is the record of truth."""

    name = "pageledger"

    def __init__(self, env: dict[str, str], server_id: str = "pageledger") -> None:
        super().__init__(env=env)
        self.server_id = server_id
        # Users' own personal fields are sealed with their key as they are stored (adapters.personal_keys),
        # in a database (an in-memory store, for unit tests, keeps them as they are).
        if hasattr(self.recorder, "events_table_name"):
            lock = write_lock(self.recorder.datastore.pool.db_name) \
                if isinstance(self.recorder, LockingSQLiteRecorder) else nullcontext()
            self.mapper.subjects = SubjectKeys(PersonalKeys(self.recorder, lock))  # type: ignore[attr-defined]

    def record(self, *aggregates: Aggregate, events: Sequence[Any] = ()) -> None:
        """Store the aggregates' pending events and ready-made `events` in ONE transaction.

        The same guarantee as `save()`, without its per-object runtime Protocol checks, which
        cost more than encoding and storing a print job (40 µs each, measured).
        """
        pending = [e for a in aggregates for e in a.collect_events()]
        pending.extend(events)
        if pending:
            self.events.put(pending)

    def construct_mapper(self) -> Mapper:
        return self.factory.mapper(transcoder=MsgpackTranscoder(), mapper_class=CompactMapper)
