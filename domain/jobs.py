"""PrintJob: one print job and its lifecycle.

An ordinary tracked job is exactly one event, `PrintJob.Tracked`, priced when it is recorded.
Its id is derived from the client's job key (see `job_id`), so re-posting a job after a
time-out finds the same aggregate and never creates a second job.

Field order of each event is its stored order (events are stored as arrays): append new
fields at the end, never reorder or remove.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic


def job_id(server_id: str, job_key: str) -> UUID:
    """The id of the job a client identifies by `job_key` on the server `server_id`."""
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:job:{job_key}")


class PrintJob(Aggregate):
    """A print job as tracked on a print server."""

    class Recorded(Aggregate.Created):
        """The facts of a job as it was seen on a print server: the fields that `Tracked` and
        `Denied` share, defined once. Never stored itself."""

        user: str
        printer: str
        client_host: str
        submitted_at: int  # µs since the Unix epoch, UTC
        pages: int  # impressions per copy, after N-up and page ranges
        copies: int
        sheets: int  # sheets of paper for all copies
        colour_pages: int  # colour impressions per copy
        duplex: bool
        paper: str
        size: int  # bytes of the spooled data
        pdl: str  # page-description language the pages were counted in
        cost: int  # 1/10,000 currency unit, for all copies
        schedule: int  # version of the printer's cost schedule that priced it

        def apply(self, aggregate: "PrintJob") -> None:
            # A job's state is its facts as recorded (every field but the envelope's).
            for name in _facts_of(type(self)):
                setattr(aggregate, name, getattr(self, name))

    class Tracked(Recorded):
        """An ordinary job: the one event it takes to account for it."""

        document: str  # personal field: kept last so it can be encrypted or omitted on its own
        # Appended for jobs replayed from a legacy database (tools/pa6_migrate): the legacy row's
        # id ("" for a job an agent reported: the mark of a migrated job) and its billing code.
        # Their cost and schedule are the legacy system's, as charged, never re-priced.
        legacy_id: str = ""
        billing_code: str = ""

        APPENDED_DEFAULTS = {"legacy_id": "", "billing_code": ""}

    class Denied(Recorded):
        """A job refused when it was tracked (e.g. its user has no licence seat).

        It replaces `Tracked` for that job — still one event — with the same facts and why it
        was refused, so reports can show denied jobs while usage totals leave them out.
        """

        reason: str
        document: str  # personal field, kept last (see Tracked)

        def apply(self, aggregate: "PrintJob") -> None:
            super().apply(aggregate)
            aggregate.state = "denied"

    def __init__(self) -> None:
        # The facts are set by the created event itself (Recorded.apply, run after this).
        self.state = "tracked"

    @classmethod
    def track(cls, job_id: UUID, **facts: object) -> "PrintJob":
        """A job that was seen on a print server, as an aggregate with its pending event."""
        return cls._create(cls.Tracked, id=job_id, **facts)

    @classmethod
    def tracked(cls, job_id: UUID, **facts: object) -> "PrintJob.Tracked":
        """Just the event that records a job: batch tracking never needs the aggregate itself,
        and building one costs several times more than the event (the state it would hold is
        still defined in one place, `__init__`, which replays the event)."""
        return cls.Tracked(originator_id=job_id, originator_version=1,
                           timestamp=cls.Tracked.create_timestamp(), originator_topic=_TOPIC, **facts)

    @classmethod
    def denied(cls, job_id: UUID, *, reason: str, **facts: object) -> "PrintJob.Denied":
        """Just the event that records a job seen but refused (see `tracked`)."""
        return cls.Denied(originator_id=job_id, originator_version=1, timestamp=cls.Denied.create_timestamp(),
                          originator_topic=_TOPIC, reason=reason, **facts)

    def hold(self, spool: str, spool_size: int) -> None:
        """The job's data is in the spool store (by its SHA-256), waiting for its owner."""
        if self.state != "tracked":
            raise JobNotHoldable(f"a {self.state} job cannot be held")
        self._held(spool, spool_size)

    @event("Held")
    def _held(self, spool: str, spool_size: int) -> None:
        self.spool = spool
        self.spool_size = spool_size
        self.state = "held"


class JobNotHoldable(ValueError):
    pass


_ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


@lru_cache(maxsize=None)
def _facts_of(event_class: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(event_class) if f.name not in _ENVELOPE)


_TOPIC = get_topic(PrintJob)
