"""The event history as a person reads it: events of the log decoded into named fields.

Read straight from the event store (the record of truth), not from a read model: each stored
event is decoded by the compact mapper into its domain event, and its fields are shaped into
plain values — ids as text, times as ISO 8601 — never raw bytes. Secrets an event holds as
digests (password hashes, PIN and token digests, licence keys) are shown as "[redacted]", and
a job's document name as the site's privacy setting shows it in every report.

Paging is by notification id (keyset): `after` is the last id of the page before. Filters on
type and time cannot use an index of the log, so one page scans at most `SCAN_LIMIT` events and
then answers with what it found and where to go on (`next_cursor`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent

from adapters.codec import domain_event_topics, short_topic, topic_of
from adapters.event_seals import RawEvent, RawLog
from adapters.personal_keys import PersonalKeys, open_job_views
from domain.jobs import PrintJob
from domain.site_settings import SECRET_SETTINGS, SiteSettings, shown_value
from domain.units import iso, to_micros

SCAN_LIMIT = 20_000
REDACTED = "[redacted]"
SECRET_FIELDS = frozenset({"password_hash", "pin_digest", "secret_hash", "key"})
TIME_FIELDS = frozenset({"at", "submitted_at", "installed_at", "expires_at"})
SETTING_CHANGED = short_topic(SiteSettings.FieldChanged)
JOB_TOPICS = (short_topic(PrintJob.Tracked), short_topic(PrintJob.Denied), short_topic(PrintJob.Secured))
_ENVELOPE = frozenset({"originator_id", "originator_version", "originator_topic", "timestamp"})

DocumentShown = Callable[[str], str]  # the privacy setting's view of a document name


@dataclass(frozen=True)
class EventFilter:
    after: int = 0
    limit: int = 100
    topics: tuple[str, ...] = ()
    aggregate: UUID | None = None
    since: int | None = None  # recorded at or after, µs
    until: int | None = None  # recorded before, µs


@dataclass(frozen=True)
class HistoryEvent:
    position: int  # notification id
    aggregate: str
    version: int
    type: str
    recorded_at: str
    recorded_us: int
    fields: dict[str, Any]


def known_topic(topic: str) -> bool:
    return topic in domain_event_topics()


def _plain(name: str, value: Any) -> Any:
    if name in SECRET_FIELDS and value:
        return REDACTED
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return REDACTED  # no event of ours stores readable bytes
    if name in TIME_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        try:
            return iso(value)
        except (OverflowError, ValueError, OSError):  # a client's broken clock: show the number
            return value
    if isinstance(value, dict):
        return {str(k): _plain(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain("", v) for v in value]
    return value


class EventHistory:
    """Decodes events of the log for the audit API (see module docstring)."""

    def __init__(self, app: Application, document_shown: DocumentShown = lambda name: name) -> None:
        self.app = app
        self.log = RawLog(app.recorder)
        self.personal = PersonalKeys(app.recorder, secret=getattr(app, "privacy_secret", None))
        self.document_shown = document_shown

    def decode(self, raw: RawEvent) -> HistoryEvent:
        nid, originator, version, stored, state = raw
        event = self.app.mapper.to_domain_event(StoredEvent(
            originator_id=originator if isinstance(originator, UUID) else UUID(str(originator)),
            originator_version=version, topic=stored, state=bytes(state)))
        topic = topic_of(stored)  # "T" is shown as PrintJob.Tracked (adapters.codec)
        if topic in JOB_TOPICS:
            open_job_views(self.personal, [event])  # sealed personal fields, opened or erased
        values = {f.name: _plain(f.name, getattr(event, f.name)) for f in dataclasses.fields(event)
                  if f.name not in _ENVELOPE}
        if topic in JOB_TOPICS and "document" in values:
            values["document"] = self.document_shown(values["document"])
        if topic == SETTING_CHANGED and values.get("field") in SECRET_SETTINGS:  # e.g. the SMTP password
            values["old"] = shown_value(values["field"], values["old"])
            values["new"] = shown_value(values["field"], values["new"])
        recorded = to_micros(event.timestamp)
        return HistoryEvent(nid, str(event.originator_id), version, topic, iso(recorded), recorded, values)

    def page(self, f: EventFilter) -> tuple[list[HistoryEvent], int | None]:
        """A page of events and the cursor to go on from (None at the head of the log)."""
        head = int(self.app.recorder.max_notification_id() or 0)
        timed = f.since is not None or f.until is not None
        scan_bounded = (timed or bool(f.topics)) and f.aggregate is None
        upto = min(head, f.after + SCAN_LIMIT) if scan_bounded else head
        found: list[HistoryEvent] = []
        after = f.after
        while len(found) < f.limit and after < upto:
            rows = self.log.select(after=after, upto=upto, limit=500 if timed else f.limit - len(found),
                                   topics=f.topics, originator=f.aggregate)
            if not rows:
                after = upto
                break
            for raw in rows:
                after = raw[0]
                event = self.decode(raw)
                if (f.since is not None and event.recorded_us < f.since) or \
                        (f.until is not None and event.recorded_us >= f.until):
                    continue
                found.append(event)
                if len(found) == f.limit:
                    break
        return found, (after if after < head else None)

    def of_job(self, job_number: int) -> tuple[dict[str, Any], list[HistoryEvent]] | None:
        """Every event of the job whose number (the notification id of its first event) is
        `job_number`, with that first event's facts; None when there is no such job."""
        first = self.log.select(after=job_number - 1, upto=job_number, limit=1, topics=JOB_TOPICS)
        if not first:
            return None
        opening = self.decode(first[0])
        events = self.log.select(after=0, limit=10_000, originator=UUID(opening.aggregate))
        return opening.fields, [self.decode(raw) for raw in events]

