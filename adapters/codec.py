"""Compact storage of events: MessagePack arrays through msgspec.

The library's default mapper stores each event as tagged JSON with field names, the
originator topic and an ISO timestamp (about 630 B for a print job). This one stores the
event's own fields as a MessagePack array in declaration order, the timestamp as int µs, and a
short topic: ``PrintJob.Tracked`` for a class of the ``domain`` package, whose class names are
unique across its modules (checked), the library's ``module:qualname`` for anything else. Fields can therefore only be
appended to an event class; a stored event with fewer values than its class takes the
missing trailing fields from the class's ``APPENDED_DEFAULTS`` mapping (upcasting by
appending), and is refused if a missing field has no default there.

The two events of nearly every row, a tracked and a denied job, are stored under
one-character topic codes instead (`TOPIC_CODES`: "T", "D"; 15 B less per job). Their long
spellings, which databases written before the codes hold, still read: `topic_of` gives the
short topic of a stored one, and `stored_spellings` every value a filter on topics must match.
Everything above the store (projections, the event history, the API) sees short topics only;
the digest chain (adapters.event_seals) hashes the topic as stored.
"""
from __future__ import annotations

import dataclasses
import importlib
import operator
import pkgutil
import typing
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence
from uuid import UUID

import msgspec
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic, resolve_topic

from adapters.personal_keys import (PERSON_FIELDS, PERSONAL_USER_FIELDS, logins_to_store, open_people, stored_numbers,
                                    store_people)
from domain.units import from_micros, to_micros

_SKIPPED = frozenset({"originator_id", "originator_version", "originator_topic"})
_DOMAIN_PREFIX = "domain."


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, UUID):
        return obj.bytes
    if isinstance(obj, datetime):
        return to_micros(obj)
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in an event")


class MsgpackTranscoder(Transcoder):
    """msgspec MessagePack; the mapper below does all the shaping, so nothing is registered."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
        self._decoder = msgspec.msgpack.Decoder()

    def encode(self, obj: Any) -> bytes:
        return self._encoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        return self._decoder.decode(data)

    def register(self, transcoding: Transcoding) -> None:  # pragma: no cover - not used
        raise NotImplementedError("MsgpackTranscoder stores plain values only")


@dataclasses.dataclass(frozen=True)
class _EventShape:
    cls: type
    names: tuple[str, ...]
    timestamp_index: int
    defaults: tuple[Any, ...]  # default of each field for events stored before it existed, or MISSING
    aggregate_topic: str | None
    values: Callable[[Any], tuple[Any, ...]]  # an event's values of `names`, in one C call


@lru_cache(maxsize=None)
def _shape(cls: type) -> _EventShape:
    fields = [f for f in dataclasses.fields(cls) if f.name not in _SKIPPED]
    names = tuple(f.name for f in fields)
    appended = getattr(cls, "APPENDED_DEFAULTS", {})
    defaults = tuple(appended.get(n, dataclasses.MISSING) for n in names)
    aggregate_topic = None
    if any(f.name == "originator_topic" for f in dataclasses.fields(cls)):
        outer = cls.__qualname__.rsplit(".", 1)[0]
        aggregate_topic = f"{cls.__module__}:{outer}"
    values = operator.attrgetter(*names) if len(names) > 1 else (lambda e: tuple(getattr(e, n) for n in names))
    return _EventShape(cls, names, names.index("timestamp") if "timestamp" in names else -1,
                       defaults, aggregate_topic, values)


@lru_cache(maxsize=None)
def _domain_classes() -> dict[str, type]:
    """Top-level classes of every module of the `domain` package, by name."""
    import domain

    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"{_DOMAIN_PREFIX}{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, type) and obj.__module__ == module.__name__:
                if name in found and found[name] is not obj:
                    raise RuntimeError(f"two domain classes are named {name}: topics would be ambiguous")
                found[name] = obj
    return found


@lru_cache(maxsize=None)
def short_topic(cls: type) -> str:
    if cls.__module__.startswith(_DOMAIN_PREFIX):
        outer = cls.__qualname__.split(".", 1)[0]
        if _domain_classes().get(outer) is not None:
            return cls.__qualname__
    return get_topic(cls)


# Stored topic codes of the most frequent events. A code never collides with a short topic (those
# hold a "." or a ":"); a code, once used, keeps its meaning for ever (databases hold it).
TOPIC_CODES = {"PrintJob.Tracked": "T", "PrintJob.Denied": "D"}
_CODED = {code: topic for topic, code in TOPIC_CODES.items()}


def stored_topic(topic: str) -> str:
    """What the store holds for the short topic `topic`: its code, or itself."""
    return TOPIC_CODES.get(topic, topic)


def topic_of(stored: str) -> str:
    """The short topic of a stored topic, whether stored as a code or spelt out (older rows)."""
    return _CODED.get(stored, stored)


def stored_spellings(topics: Iterable[str]) -> tuple[str, ...]:
    """Every stored value of short `topics`: each topic and, where it has one, its code (the
    store holds both: rows written before the codes existed are spelt out)."""
    found: list[str] = []
    for topic in topics:
        for value in (topic, TOPIC_CODES.get(topic)):
            if value is not None and value not in found:
                found.append(value)
    return tuple(found)


# Printing applications (agent/printing_application.py, as it cleans them) stored as a number:
# a job's event holds the 1-based position of its application's name here, one byte, instead
# of the name (16 B for "Microsoft® Word"); any other name is stored as it is, and so are the
# events stored before this list existed. APPEND ONLY: a position, once stored, names its
# application for ever. The names most seen in print jobs: what macOS print dialogs send, and
# what PDF and PostScript documents name as their Creator or Producer, version cut off.
APPLICATION_CODES: tuple[str, ...] = (
    "Microsoft® Word", "Microsoft® Excel", "Microsoft® PowerPoint", "Microsoft® Outlook", "Microsoft Word",
    "Microsoft Excel", "Microsoft PowerPoint", "Microsoft Outlook", "Microsoft Edge", "Microsoft: Print To PDF",
    "Microsoft® Word for Microsoft", "Microsoft® Excel® for Microsoft", "Microsoft® PowerPoint® for Microsoft",
    "Adobe Acrobat Pro DC", "Microsoft Reporting Services", "Mozilla Firefox", "Firefox",
    "Google Chrome", "Chromium", "Skia/PDF", "Safari", "Preview", "TextEdit", "Pages", "Numbers", "Keynote",
    "Quartz PDFContext", "LibreOffice", "Writer", "Calc", "Impress", "Draw", "OpenOffice.org", "cairo",
    "GPL Ghostscript", "Ghostscript", "Acrobat Reader", "Adobe Acrobat Reader", "Adobe Acrobat",
    "Adobe Acrobat Pro", "Acrobat PDFMaker", "Adobe PDF Library", "Adobe InDesign", "Adobe Illustrator",
    "Adobe Photoshop", "PScript5.dll", "Evince", "Okular", "Thunderbird", "WPS Office", "Foxit Reader",
    "Foxit PDF Reader", "PDFium", "Google Docs Renderer", "iText", "PDFsharp", "Qt", "wkhtmltopdf", "pdfTeX",
    "LaTeX with hyperref", "ReportLab PDF Library - www.reportlab.com", "Crystal Reports", "AutoCAD",
    "Microsoft® Visio", "Microsoft® Publisher", "Microsoft OneNote", "Notepad", "WordPad", "macOS", "Mac OS X",
    "Foxit Reader PDF Printer", "iText®",
)
_APPLICATION_CODE = {name: i for i, name in enumerate(APPLICATION_CODES, 1)}
# Stored topics (codes and spellings) of the events whose last field is `application`.
_APPLICATION_TOPICS = frozenset({"T", "D", "PrintJob.Tracked", "PrintJob.Denied", "PrintJob.Secured"})


def application_name(stored: Any) -> Any:
    """The application a stored `application` value names: a position in APPLICATION_CODES, or
    the name itself (any other name, and every event stored before the codes)."""
    if type(stored) is int:
        return APPLICATION_CODES[stored - 1] if 0 < stored <= len(APPLICATION_CODES) else ""
    return stored


@lru_cache(maxsize=None)
def domain_event_topics() -> frozenset[str]:
    """The short topic of every event class of the `domain` package (what a filter may name:
    resolving a topic a client sent would import whatever module it names)."""
    found = set()
    for outer in _domain_classes().values():
        for obj in vars(outer).values():
            if isinstance(obj, type) and issubclass(obj, CanMutateAggregate) and obj.__module__ == outer.__module__:
                found.add(short_topic(obj))
    return frozenset(found)


@lru_cache(maxsize=None)
def resolve_short_topic(topic: str) -> type:
    topic = topic_of(topic)
    if ":" in topic:
        return resolve_topic(topic)
    outer, *inner = topic.split(".")
    obj: Any = _domain_classes()[outer]
    for name in inner:
        obj = getattr(obj, name)
    return obj


class CompactMapper(Mapper):
    """Maps eventsourcing events to compact stored events and back (see module docstring).

    With `subjects` set (adapters.event_store does), the personal fields of Users' own events
    are sealed with the User's key as they are stored and opened as they are read
    (adapters.personal_keys.SubjectKeys). With `people` set (adapters.event_store does), the
    logins other events name (adapters.personal_keys.PERSON_FIELDS) are stored as person
    numbers and read back as logins, or as "erased user #N"."""

    subjects: Any = None
    people: Any = None
    _last_timestamp: tuple[Any, int] = (None, 0)  # (datetime, its µs): a whole tuple, swapped at once

    def prepare_people(self, domain_events: Sequence[Any]) -> None:
        """Look up, in one go, the people of every login a batch of events about to be stored
        names (a batch of seat changes would otherwise cost a query each)."""
        if self.people is None:
            return
        naming = [(e, topic) for e in domain_events if (topic := short_topic(type(e))) in PERSON_FIELDS]
        if len(naming) < 2:  # one event looks its people up itself, as cheaply
            return
        logins = []
        for e, topic in naming:
            logins.extend(logins_to_store(topic, {n: getattr(e, n, None) for n in PERSON_FIELDS[topic]}))
        if logins:
            self.people.people_for(logins)

    def prepare_subjects(self, domain_events: Sequence[Any]) -> None:
        """Make or read, in one go, the keys of the Users whose personal fields a batch of events
        about to be stored carries (an import of many people would otherwise cost a transaction
        each)."""
        if self.subjects is None:
            return
        subjects = [e.originator_id for e in domain_events if short_topic(type(e)) in PERSONAL_USER_FIELDS]
        if len(subjects) >= 2:  # one event makes its key itself, as cheaply
            self.subjects.keys_for(subjects)

    def prepare_numbers(self, stored_events: Sequence[Any]) -> None:
        """Read, in one go, the people that stored events about to be loaded name (the licence
        holds one seat event per person)."""
        if self.people is None:
            return
        naming = [(topic, s) for s in stored_events if (topic := topic_of(s.topic)) in PERSON_FIELDS]
        if len(naming) < 2:  # one event (a job's owner) looks its person up itself, as cheaply
            return
        numbers = []
        for topic, s in naming:
            numbers.extend(stored_numbers(topic, decode_view(topic, s.state)))
        if numbers:
            self.people.people_by_number(numbers)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        shape = _shape(cls)
        values = list(shape.values(domain_event))
        topic = short_topic(cls)
        if self.subjects is not None and topic in PERSONAL_USER_FIELDS:
            named = dict(zip(shape.names, values))
            self.subjects.seal(topic, domain_event.originator_id, named)
            values = [named[n] for n in shape.names]
        if self.people is not None and topic in PERSON_FIELDS:
            named = dict(zip(shape.names, values))
            store_people(self.people, topic, named)
            values = [named[n] for n in shape.names]
        if shape.timestamp_index >= 0:
            timestamp = values[shape.timestamp_index]
            # The events of one batch usually share their timestamp (a bulk record sets one).
            last = self._last_timestamp  # read once: another thread may swap it
            if timestamp is not last[0]:
                last = self._last_timestamp = (timestamp, to_micros(timestamp))
            values[shape.timestamp_index] = last[1]
        if topic in _APPLICATION_TOPICS and (code := _APPLICATION_CODE.get(values[-1])):
            values[-1] = code  # the application, last field: its number (APPLICATION_CODES)
        state = self.transcoder.encode(values)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        # The library's frozen dataclass, its four fields set without the per-field frozen
        # __init__ (a sixth of mapping a job event).
        stored = object.__new__(StoredEvent)
        stored.__dict__.update(originator_id=domain_event.originator_id,
                               originator_version=domain_event.originator_version, topic=stored_topic(topic),
                               state=state)
        return stored

    def to_domain_event(self, stored_event: Any) -> Any:
        state = stored_event.state
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        values = self.transcoder.decode(state)
        shape = _shape(resolve_short_topic(stored_event.topic))
        if len(values) < len(shape.names):
            missing = shape.defaults[len(values):]
            if any(d is dataclasses.MISSING for d in missing):
                raise ValueError(f"stored {stored_event.topic} lacks fields without defaults")
            values = [*values, *missing]
        kwargs = dict(zip(shape.names, values))
        if shape.timestamp_index >= 0:
            kwargs["timestamp"] = from_micros(kwargs["timestamp"])
        if stored_event.topic in _APPLICATION_TOPICS:
            kwargs["application"] = application_name(kwargs["application"])
        originator_id = stored_event.originator_id
        kwargs["originator_id"] = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        topic = topic_of(stored_event.topic)
        if self.subjects is not None and topic in PERSONAL_USER_FIELDS:
            self.subjects.open(topic, kwargs["originator_id"], kwargs)
        if self.people is not None and topic in PERSON_FIELDS:
            open_people(self.people, [(topic, kwargs)])
        kwargs["originator_version"] = stored_event.originator_version
        if shape.aggregate_topic is not None:
            kwargs["originator_topic"] = shape.aggregate_topic
        # The stored values were checked when the event was made; filling the instance's
        # __dict__ skips the frozen dataclass's field-by-field __init__ (half of decoding).
        domain_event = object.__new__(shape.cls)
        domain_event.__dict__.update(kwargs)
        return domain_event


# --- Light views for projections -----------------------------------------------------------
# A projection needs an event's field values, not a domain event object: building one (a
# dataclass, a datetime, a UUID) costs more than the database work of projecting it. A view
# is a msgspec Struct with the event's stored fields, decoded in C; `timestamp` stays int µs.


class EventView(msgspec.Struct, array_like=True):
    """Base of the generated views; `event_class` is the domain event class it stands for."""

    event_class: typing.ClassVar[type]


@lru_cache(maxsize=None)
def _view_type(cls: type) -> tuple[type, msgspec.msgpack.Decoder]:
    shape = _shape(cls)
    fields = []
    for name, default in zip(shape.names, shape.defaults):
        fields.append((name, typing.Any) if default is dataclasses.MISSING else (name, typing.Any, default))
    fields.append(("originator_id", typing.Any, None))  # filled from the log row, never stored in state
    view = msgspec.defstruct(f"{cls.__qualname__}View", fields, bases=(EventView,), array_like=True)
    view.event_class = cls
    return view, msgspec.msgpack.Decoder(view)


def decode_view(topic: str, state: bytes, originator_id: Any = None) -> EventView:
    """The stored fields of one event as a light view (see above)."""
    _, decoder = _view_type(resolve_short_topic(topic))
    view = decoder.decode(state)
    view.originator_id = originator_id
    if topic in _APPLICATION_TOPICS and type(view.application) is int:
        view.application = application_name(view.application)
    return view
