"""PrintJob: one print job and its lifecycle.

An ordinary tracked job is exactly one event, `PrintJob.Tracked`, priced when it is recorded.
Its id is derived from the client's job key (see `job_id`), so re-posting a job after a
time-out finds the same aggregate and never creates a second job.

Field order of each event is its stored order (events are stored as arrays): append new
fields at the end, never reorder or remove.
"""
from __future__ import annotations

import dataclasses
import hashlib
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic


_URL_SHA1 = hashlib.sha1(NAMESPACE_URL.bytes)
_UUID5_MASK = ~(0xF000 << 64) & ~(0xC000 << 48) & (1 << 128) - 1
_UUID5_BITS = (5 << 76) | (0x8000 << 48)


def job_id(server_id: str, job_key: str) -> UUID:
    """The id of the job a client identifies by `job_key` on the server `server_id`: the
    uuid5 of NAMESPACE_URL and "pageledger:<server>:job:<key>", computed here from a copy of the
    namespace's SHA-1 state (the same value, without uuid5's per-call set-up: the migration
    derives one per legacy row; tests/unit hold it equal to uuid.uuid5)."""
    digest = _URL_SHA1.copy()
    digest.update(f"pageledger:{server_id}:job:{job_key}".encode("utf-8"))
    return UUID(int=(int.from_bytes(digest.digest()[:16], "big") & _UUID5_MASK) | _UUID5_BITS)


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
        """An ordinary job: the one event it takes to account for it.

        Fields after ``document`` were appended later (events stored before them decode with
        APPENDED_DEFAULTS): ``paper_counts`` paper -> [impressions, colour impressions] per
        copy (None: the agent told one paper for every page); ``pages_known``/``colour_known``
        False when the agent could not be sure of them, ``uncertain`` saying why; for jobs
        replayed from a legacy database (tools/pa6_migrate) ``legacy_id``, the legacy row's id
        ("" for a job an agent reported: the mark of a migrated job), and its ``billing_code``.
        A migrated job's cost and schedule are the legacy system's, as charged, never re-priced.
        ``person`` > 0: the number of the person whose key seals the job's personal fields, the
        login among them — ``user`` and ``client_host`` are then empty and ``document`` holds
        the sealed fields (adapters.personal_keys); 0 on events stored before it, whose ``user``
        is the login. ``application``: the application the job was printed from, as the agent
        read it from the job (agent/printing_application.py); "" when it could not tell, and on
        events stored before it. Not personal: it names software, not a person or a document.
        """

        document: str  # personal field (see Recorded): the last of the first version's fields
        paper_counts: dict | None = None
        pages_known: bool = True
        colour_known: bool = True
        uncertain: str = ""
        legacy_id: str = ""
        billing_code: str = ""
        person: int = 0
        application: str = ""

        APPENDED_DEFAULTS = {"paper_counts": None, "pages_known": True, "colour_known": True, "uncertain": "",
                             "legacy_id": "", "billing_code": "", "person": 0, "application": ""}

    class Denied(Recorded):
        """A job refused when it was tracked (e.g. its user has no licence seat).

        It replaces `Tracked` for that job — still one event — with the same facts and why it
        was refused, so reports can show denied jobs while usage totals leave them out.
        """

        reason: str
        document: str  # personal field (see Tracked)
        paper_counts: dict | None = None
        pages_known: bool = True
        colour_known: bool = True
        uncertain: str = ""
        person: int = 0  # as on Tracked
        application: str = ""  # as on Tracked

        APPENDED_DEFAULTS = {"paper_counts": None, "pages_known": True, "colour_known": True, "uncertain": "",
                             "person": 0, "application": ""}

        def apply(self, aggregate: "PrintJob") -> None:
            super().apply(aggregate)
            aggregate.state = "denied"

    class Secured(Recorded):
        """A job on a secure queue: the same facts as `Tracked`, but neither charged nor in usage
        until it is `Printed` (priced then, where it printed). Still one event while it waits.

        `expires_at` is when it expires unreleased (µs; the queue's hold time when it arrived);
        `code_digest` the keyed digest of its release code ("" when the queue asks for none, or
        the owner's own PIN is the code)."""

        expires_at: int
        code_digest: str
        document: str  # personal field (see Tracked)
        paper_counts: dict | None = None  # as on Tracked
        pages_known: bool = True
        colour_known: bool = True
        uncertain: str = ""
        application: str = ""  # as on Tracked (appended: events stored before it decode with "")

        APPENDED_DEFAULTS = {"application": ""}

        def apply(self, aggregate: "PrintJob") -> None:
            super().apply(aggregate)
            aggregate.state = "secured"

    def __init__(self) -> None:
        # The facts are set by the created event itself (Recorded.apply, run after this).
        self.state = "tracked"
        self.release_failure = ""

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
    def migrated(cls, job_id: UUID, timestamp: Any, *, user: str, printer: str, client_host: str, submitted_at: int,
                 pages: int, copies: int, sheets: int, colour_pages: int, duplex: bool, paper: str, cost: int,
                 schedule: int, document: Any, legacy_id: str, billing_code: str,
                 person: int = 0) -> "PrintJob.Tracked":
        """The `Tracked` event of a job replayed from a legacy database, built for bulk: every
        field named (a missing one is a TypeError, as with `tracked`), the appended fields at
        their defaults, and one `timestamp` for the batch. It skips the frozen dataclass's
        per-field __init__, which cost more than everything else the replay does for a row
        (measured: docs/migration.md); the event is equal to the one `tracked` builds."""
        event = object.__new__(cls.Tracked)
        event.__dict__.update(originator_id=job_id, originator_version=1, timestamp=timestamp,
                              originator_topic=_TOPIC, user=user, printer=printer, client_host=client_host,
                              submitted_at=submitted_at, pages=pages, copies=copies, sheets=sheets,
                              colour_pages=colour_pages, duplex=duplex, paper=paper, size=0, pdl="unknown", cost=cost,
                              schedule=schedule, document=document, paper_counts=None, pages_known=True,
                              colour_known=True, uncertain="", legacy_id=legacy_id, billing_code=billing_code,
                              person=person, application="")
        return event

    @classmethod
    def secured(cls, job_id: UUID, *, expires_at: int, code_digest: str, **facts: object) -> "PrintJob.Secured":
        """Just the event that records a job on a secure queue (see `tracked`)."""
        return cls.Secured(originator_id=job_id, originator_version=1, timestamp=cls.Secured.create_timestamp(),
                           originator_topic=_TOPIC, expires_at=expires_at, code_digest=code_digest, **facts)

    @classmethod
    def denied(cls, job_id: UUID, *, reason: str, **facts: object) -> "PrintJob.Denied":
        """Just the event that records a job seen but refused (see `tracked`)."""
        return cls.Denied(originator_id=job_id, originator_version=1, timestamp=cls.Denied.create_timestamp(),
                          originator_topic=_TOPIC, reason=reason, **facts)

    def hold(self, spool: str, spool_size: int) -> None:
        """The job's data is in the spool store (by its SHA-256), waiting for its owner."""
        if self.state not in ("tracked", "secured"):
            raise JobNotHoldable(f"a {self.state} job cannot be held")
        self._held(spool, spool_size)

    @event("Held")
    def _held(self, spool: str, spool_size: int) -> None:
        self.spool = spool
        self.spool_size = spool_size
        self.state = "held"


    # --- the release lifecycle (secure queues) -------------------------------------------
    # held --release--> released --print--> printed
    #   ^                  |
    #   +--ReleaseFailed---+ (held again with the reason, e.g. the printer is stopped;
    #                         or failed for good when the data cannot be printed)
    # held/failed --delete--> deleted;  held/failed --expire--> expired

    @property
    def releasable(self) -> bool:
        return self.state in ("held", "failed")

    def release(self, by: str, where: str, at: int) -> None:
        """Its owner (or an admin) asked for it at the printer `where` (the queue's own, or one
        of its group). Checks of who and where are the caller's, which sees the printers."""
        if not self.releasable:
            raise JobNotReleasable(self._why_not("released"))
        self._released(by=by, where=where, at=at)

    @event("Released")
    def _released(self, by: str, where: str, at: int) -> None:
        self.state = "released"
        self.released_to = where
        self.release_failure = ""

    def print_(self, *, printer: str, at: int, sheets: int, cost: int, schedule: int, cups_job: str) -> bool:
        """CUPS reports the released job completed on `printer`; False if recorded already."""
        if self.state == "printed":
            return False
        if self.state != "released":
            raise JobNotReleasable(f"a {self.state} job cannot have printed")
        self._printed(printer=printer, at=at, user=self.user, pages=self.pages, copies=self.copies,
                      sheets=sheets, colour_pages=self.colour_pages, cost=cost, schedule=schedule,
                      cups_job=cups_job)
        return True

    @event("Printed")
    def _printed(self, printer: str, at: int, user: str, pages: int, copies: int, sheets: int,
                 colour_pages: int, cost: int, schedule: int, cups_job: str) -> None:
        # user and figures are repeated so that usage counts the job from this one event, on
        # the day it printed, at the printer it printed on (pull printing), at that printer's price.
        self.state = "printed"
        self.printed_on = printer
        self.printed_cost = cost
        self.cups_job = cups_job

    def fail_release(self, why: str, at: int, *, held: bool) -> bool:
        """The release did not print. `held`: it can be released again (printer stopped,
        CUPS refused it for now); else it failed for good. False if nothing to record."""
        if self.state != "released":
            return False
        self._release_failed(why=why, at=at, held=held)
        return True

    @event("ReleaseFailed")
    def _release_failed(self, why: str, at: int, held: bool) -> None:
        self.state = "held" if held else "failed"
        self.release_failure = why

    def refuse_code(self, by: str, at: int) -> None:
        """A wrong release code was given for this job: audited (and throttled by the caller)."""
        self._code_refused(by=by, at=at)

    @event("ReleaseCodeRefused")
    def _code_refused(self, by: str, at: int) -> None:
        pass

    def delete(self, by: str, at: int) -> None:
        if not self.releasable and self.state != "secured":
            raise JobNotReleasable(self._why_not("deleted"))
        self._deleted(by=by, at=at)

    @event("Deleted")
    def _deleted(self, by: str, at: int) -> None:
        self.state = "deleted"

    def expire(self, at: int) -> bool:
        """Its hold time is over: False if it is no longer waiting (released, printed, gone)."""
        if not self.releasable and self.state != "secured":
            return False
        self._expired(at=at)
        return True

    @event("Expired")
    def _expired(self, at: int) -> None:
        self.state = "expired"

    def _why_not(self, what: str) -> str:
        if self.state == "secured":
            return f"the job's data has not reached the server yet: it cannot be {what}"
        if self.state in ("tracked", "denied"):
            return f"the job was not on a secure queue: it cannot be {what}"
        return f"the job is already {self.state}"


class JobNotHoldable(ValueError):
    pass


class JobNotReleasable(ValueError):
    pass


_ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


@lru_cache(maxsize=None)
def _facts_of(event_class: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(event_class) if f.name not in _ENVELOPE)


_TOPIC = get_topic(PrintJob)
