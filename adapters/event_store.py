"""The event store: the eventsourcing Application that saves and loads every PageLedger aggregate,
with the compact mapper (adapters.codec) and the recorder the database URL picked (adapters.stores)."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Iterator, Sequence
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import EventStore, Mapper

from adapters.codec import CompactMapper, MsgpackTranscoder
from adapters.personal_keys import PersonalKeys, SubjectKeys
from adapters.sqlite_writes import LockingSQLiteRecorder, write_lock
from domain.users import keyed_user_id, user_id


class PeopleEventStore(EventStore):
    """The library's event store, looking up the people a batch of events names in one query
    each way (adapters.codec.CompactMapper.prepare_people / prepare_numbers), and the keys of
    the Users whose events it seals (prepare_subjects)."""

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> Any:
        self._prepare(domain_events)
        return super().put(domain_events, **kwargs)

    def store(self, domain_events: Sequence[Any]) -> None:
        """Store `domain_events` in one transaction, as `put` does, without the library's
        Recording and Notification of each event, which `put` builds for its caller and
        PageLedger.record never reads (two frozen dataclasses an event: a fifth of recording a
        migrated job)."""
        self._prepare(domain_events)
        self.recorder.insert_events(list(map(self.mapper.to_stored_event, domain_events)))

    def _prepare(self, domain_events: Sequence[Any]) -> None:
        self.mapper.prepare_subjects(domain_events)  # type: ignore[attr-defined]
        self.mapper.prepare_people(domain_events)  # type: ignore[attr-defined]

    def get(self, originator_id: Any, *, gt: int | None = None, lte: int | None = None, desc: bool = False,
            limit: int | None = None) -> Iterator[Any]:
        stored = list(self.recorder.select_events(originator_id=originator_id, gt=gt, lte=lte, desc=desc,
                                                  limit=limit))
        self.mapper.prepare_numbers(stored)  # type: ignore[attr-defined]
        return map(self.mapper.to_domain_event, stored)


class PageLedger(Application):
    """Saves and loads aggregates; its event store is the record of truth."""

    name = "pageledger"

    def __init__(self, env: dict[str, str], server_id: str = "pageledger", privacy_secret: bytes | None = None) -> None:
        super().__init__(env=env)
        self.server_id = server_id
        # The site's privacy key (<data_dir>/privacy.key): digests of logins are keyed with it.
        self.privacy_secret = privacy_secret
        self._known_users: set[UUID] = set()  # User ids found recorded (PageLedger.user_id)
        # Users' own personal fields are sealed with their key as they are stored (adapters.personal_keys),
        # in a database (an in-memory store, for unit tests, keeps them as they are).
        if hasattr(self.recorder, "events_table_name"):
            lock = write_lock(self.recorder.datastore.pool.db_name) \
                if isinstance(self.recorder, LockingSQLiteRecorder) else nullcontext()
            people = PersonalKeys(self.recorder, lock, secret=privacy_secret)
            self.mapper.subjects = SubjectKeys(people)  # type: ignore[attr-defined]
            # ... and the logins other events name are stored as person numbers.
            self.mapper.people = people  # type: ignore[attr-defined]

    def user_id(self, source: str, login: str) -> UUID:
        """The id of the User `login` of `source`: keyed with the privacy key (domain.users.
        keyed_user_id) for a user created since keyed ids, or the uuid5 (domain.users.user_id) a
        user created before has and keeps; the keyed one for a user not created yet. Without a
        privacy key (an in-memory store), the uuid5."""
        legacy = user_id(source, login)
        if self.privacy_secret is None:
            return legacy
        keyed = keyed_user_id(self.privacy_secret, source, login)
        for uid in (keyed, legacy):
            if uid in self._known_users or self._has_events(uid):
                self._known_users.add(uid)  # an aggregate, once recorded, is there for ever
                return uid
        return keyed

    def _has_events(self, uid: UUID) -> bool:
        return bool(list(self.recorder.select_events(originator_id=uid, limit=1)))

    def record(self, *aggregates: Aggregate, events: Sequence[Any] = ()) -> None:
        """Store the aggregates' pending events and ready-made `events` in ONE transaction.

        The same guarantee as `save()`, without its per-object runtime Protocol checks, which
        cost more than encoding and storing a print job (40 µs each, measured).
        """
        pending = [e for a in aggregates for e in a.collect_events()]
        pending.extend(events)
        if pending:
            self.events.store(pending)  # type: ignore[attr-defined]

    def construct_event_store(self) -> EventStore:
        return PeopleEventStore(mapper=self.mapper, recorder=self.recorder)

    def construct_mapper(self) -> Mapper:
        return self.factory.mapper(transcoder=MsgpackTranscoder(), mapper_class=CompactMapper)
