"""Print jobs: track what agents report (one event a job, priced at once), hold a secure
queue's job until its owner releases it. The one module that writes PrintJob aggregates.

A batch is one transaction: all of its new jobs are recorded or none of them. A job whose key
was recorded before (or earlier in the same batch) records nothing and is answered from the
job as recorded: a `duplicate` when it repeats the figures the agent sent then, a `conflict`
naming the figures that differ otherwise. Either is answered per job and never blocks the
rest of its batch, so re-posting is safe and one bad re-post cannot block an agent's outbox.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any, BinaryIO, Callable, Mapping, NamedTuple, Protocol, Sequence
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError

from adapters.event_store import PageLedger
from adapters.personal_keys import FieldSealer, Person, PersonalKeys, open_job_views, seal_fields
from commands.conflicts import retry_on_conflict
from commands.job_reports import JobReport
from adapters.spool import SpoolMismatch, SpoolTooLarge
from commands.ports import SpoolWriter
from commands.printers import PrinterCache
from commands.validation import InvalidRequest
from domain.costs import job_cost, sheets_for
from domain.jobs import JobNotHoldable, PrintJob, job_id
from adapters.clock import system_clock
from domain.printers import CODE_ENTERED, CODE_GENERATED, CODE_PREDEFINED, Printer, printer_id
from domain.privacy import KEEP, shown_document
from domain.units import MICROS_PER_SECOND, iso, to_micros

log = logging.getLogger("pageledger.jobs")

# What an agent sends that a job's event stores as sent: a re-post must repeat every one of
# them to be a duplicate. The server's own figures (sheets, cost, schedule, a denial's
# reason) are left out: they follow from these and the printer's prices at the time.
SENT_FIGURES = ("user", "printer", "client_host", "submitted_at", "pages", "copies", "colour_pages", "duplex",
                "paper", "size", "pdl", "document", "paper_counts", "pages_known", "colour_known", "uncertain",
                "application")
# Never written to the log, whose lines name a job by its key only.
PERSONAL_FIGURES = frozenset({"user", "client_host", "document"})


@dataclass(frozen=True)
class TrackOutcome:
    job_key: str
    job_id: UUID
    status: str  # "tracked" | "denied" | "duplicate" | "conflict"
    decision: str  # "print" | "hold" | "deny"
    sheets: int
    cost: int  # 1/10,000 currency unit
    message: str = ""
    fields: tuple[str, ...] = ()  # a conflict's figures that differ from the job as recorded
    release_code: str = ""  # a code generated for a held job (told to the agent once, never stored)


class Verdict(Protocol):
    """What the seat gate says about one user's jobs (commands.licensing.JobGate)."""

    track: bool
    reason: str


SeatGate = Callable[[list[str]], Mapping[str, Verdict]]
DocumentPolicy = Callable[[], str]  # the `document_names` site setting now: keep, mask or omit


class TrackJobs:
    """Record a batch of jobs atomically; a job key seen before records nothing and is answered
    from the job as recorded (`duplicate`, or `conflict` when the figures differ).

    `gate` (the licence seat check, commands.licensing.Licensing.gate_jobs) is asked once for
    the users of the batch; a job it refuses is recorded as PrintJob.Denied instead of Tracked
    and answered with decision "deny".
    """

    def __init__(self, app: PageLedger, printers: PrinterCache, gate: SeatGate | None = None,
                 unknown_colour_charge: str | Callable[[], str] = "colour",
                 codes: CodeDigest | None = None, clock: Callable[[], int] = system_clock,
                 tell_code: Callable[[str, str, str, str], None] | None = None,
                 document_policy: DocumentPolicy = lambda: KEEP, personal: PersonalKeys | None = None) -> None:
        self.app = app
        self.printers = printers
        self.gate = gate
        # A job whose colour the agent could not tell: every page priced as colour, or as reported
        # (the site setting `unknown_colour_charge` in force when the job arrives).
        self._unknown_colour_charge = (unknown_colour_charge if callable(unknown_colour_charge)
                                       else lambda: unknown_colour_charge)
        self.codes = codes  # release codes' keyed digest (adapters.pins.PinDigester)
        self.clock = clock  # a held job's expiry counts from its arrival
        self.tell_code = tell_code  # (user, code, printer, document): e-mails a generated release code
        self.document_policy = document_policy
        # When given, each job's client host and document name are sealed with its user's key
        # (adapters.personal_keys): erasing the key makes them unreadable for good.
        self.personal = personal

    @property
    def unknown_colour_charge(self) -> str:
        return self._unknown_colour_charge()

    def __call__(self, reports: Sequence[JobReport]) -> list[TrackOutcome]:
        app = self.app
        # The privacy setting applies as the job is recorded: a masked or omitted name never
        # enters the log. A re-post is compared with what its first post recorded.
        policy = self.document_policy()
        if policy != KEEP:
            reports = [msgspec.structs.replace(r, document=shown_document(r.document, policy)) for r in reports]
        ids = [job_id(app.server_id, r.job_key) for r in reports]
        verdicts: Mapping[str, Verdict] = self.gate(list(dict.fromkeys(r.user for r in reports))) if self.gate else {}
        # Tracked and denied jobs are sealed with their person's key, the login among the sealed
        # fields; jobs on secure queues keep the login (the release checks it) and use the
        # login's key (adapters.personal_keys).
        keys = self.personal.people_for(r.user for r in reports) if self.personal else None
        personal = self.personal
        known: set[UUID] = set()
        new_printers: list[Printer] = []
        conflicts: list[_Conflict] = []

        def attempt() -> list[TrackOutcome]:
            nonlocal new_printers
            by_name, new_printers = self.printers.for_names({r.printer for r in reports})
            outcomes: list[TrackOutcome] = []
            events: list[PrintJob.Tracked | PrintJob.Denied] = []
            # A key repeated in the batch is answered from its first occurrence: its event, its decision.
            first_in_batch: dict[UUID, tuple[PrintJob.Recorded, str]] = {}
            conflicts.clear()
            for report, jid in zip(reports, ids):
                printer = by_name[report.printer.lower()]
                if jid in known:
                    job: PrintJob = app.repository.get(jid)
                    outcomes.append(_repeat(report, jid, printer, self._opened(job),
                                            self._recorded_decision(job, by_name), in_batch=False,
                                            conflicts=conflicts))
                    continue
                if jid in first_in_batch:
                    event, decision = first_in_batch[jid]
                    outcomes.append(_repeat(report, jid, printer, self._opened(event), decision, in_batch=True,
                                            conflicts=conflicts))
                    continue
                verdict = verdicts.get(report.user)
                if verdict is not None and not verdict.track:
                    event = _recorded(jid, report, printer, denied=verdict.reason,
                                      unknown_colour=self.unknown_colour_charge, keys=keys)
                    outcome = TrackOutcome(report.job_key, jid, "denied", "deny", event.sheets, event.cost,
                                           verdict.reason)
                elif printer.secure:
                    code, digest, told = release_code_for(printer, report.release_code, self.codes)
                    event = _recorded(jid, report, printer, secured=(self.clock() + printer.hold_seconds
                                                                     * MICROS_PER_SECOND, digest),
                                      unknown_colour=self.unknown_colour_charge,
                                      login_keys=personal.keys_for([report.user]) if personal else None)
                    outcome = TrackOutcome(report.job_key, jid, "tracked", "hold", event.sheets, event.cost, told,
                                           release_code=code)
                else:
                    event = _recorded(jid, report, printer, unknown_colour=self.unknown_colour_charge, keys=keys)
                    outcome = TrackOutcome(report.job_key, jid, "tracked", _decision(printer), event.sheets,
                                           event.cost)
                events.append(event)
                outcomes.append(outcome)
                first_in_batch[jid] = (event, outcome.decision)
            # A printer only a duplicate or a conflict names is not registered: they record nothing.
            used = {event.printer for event in events}
            new_printers = [p for p in new_printers if p.name in used]
            app.record(*new_printers, events=events)
            self.printers.registered(new_printers)
            log.debug("tracked %d jobs (%d duplicates or conflicts record nothing)", len(events),
                      len(outcomes) - len(events))
            return outcomes

        def conflicted() -> None:
            # A re-post racing its original, or a printer registered meanwhile: find out which.
            nonlocal known
            self.printers.forget(new_printers)
            known = {jid for jid in ids if jid in app.repository}
            log.info("batch of %d jobs: %d already recorded, deciding again", len(reports), len(known))

        outcomes = retry_on_conflict(attempt, what=f"record a batch of {len(reports)} jobs",
                                     on_conflict=conflicted)
        for conflict in conflicts:  # once the batch is saved: an attempt that lost a race logs nothing
            conflict.log()
        if self.tell_code is not None:
            for report, outcome in zip(reports, outcomes):
                if outcome.release_code:
                    self.tell_code(report.user, outcome.release_code, report.printer, report.document)
        return outcomes

    def _opened(self, recorded: PrintJob | PrintJob.Recorded) -> Any:
        """The recorded job's figures with its personal fields in clear (for comparing a re-post);
        never the stored object itself, which must keep them sealed."""
        if not isinstance(getattr(recorded, "document", None), (bytes, bytearray)) or self.personal is None:
            return recorded
        copy = SimpleNamespace(**{name: getattr(recorded, name) for name in (*SENT_FIGURES, "sheets", "cost")},
                               person=getattr(recorded, "person", 0),
                               originator_id=getattr(recorded, "originator_id", None) or recorded.id)
        open_job_views(self.personal, [copy])
        return copy

    def _recorded_decision(self, job: PrintJob, by_name: Mapping[str, Printer]) -> str:
        """A job recorded before gets the answer it got then: a re-posted held job stays held,
        and its own printer decides, not one a conflicting re-post names."""
        if job.state == "denied":
            return "deny"
        if job.state != "tracked":  # secured, held, or further along its release: never printed directly
            return "hold"
        printer = by_name.get(job.printer.lower()) or self.printers.for_names([job.printer])[0][job.printer.lower()]
        return _decision(printer)


@dataclass(frozen=True)
class _Conflict:
    """A re-post whose figures differ from the job as recorded, for one warning line."""

    job_key: str
    job_id: UUID
    recorded: dict[str, object]  # the differing figures only
    posted: dict[str, object]
    in_batch: bool

    def log(self) -> None:
        names = list(self.recorded)
        told = [f"{name} recorded {_shown(name, self.recorded[name])}, posted {_shown(name, self.posted[name])}"
                for name in names if name not in PERSONAL_FIGURES]
        personal = [name for name in names if name in PERSONAL_FIGURES]
        if personal:
            told.append(f"{', '.join(personal)} (personal, not shown)")
        where = "earlier in the same batch" if self.in_batch else "before"
        log.warning("job %s was re-posted with other figures than it was recorded with %s: %s; "
                    "answered conflict, nothing recorded for the re-post", self.job_key, where, "; ".join(told),
                    extra={"job_key": self.job_key, "job_id": str(self.job_id), "fields": names})


def _shown(name: str, value: object) -> str:
    if name == "submitted_at":
        return iso(value) or "unset"  # type: ignore[arg-type]
    return str(value)


def _repeat(r: JobReport, jid: UUID, printer: Printer, recorded: PrintJob | PrintJob.Recorded, decision: str, *,
            in_batch: bool, conflicts: list[_Conflict]) -> TrackOutcome:
    """The answer to a job key recorded before: the job as recorded (its figures, its decision),
    as a duplicate when `r` repeats the figures it was recorded with, else as a conflict.
    `recorded` is the job's aggregate or, for a key repeated in one batch, its first event."""
    sent = _sent_figures(r, printer)
    differing = tuple(name for name in SENT_FIGURES if getattr(recorded, name) != sent[name])
    where = "job key repeated in this batch" if in_batch else "already recorded"
    if not differing:
        return TrackOutcome(r.job_key, jid, "duplicate", decision, recorded.sheets, recorded.cost, where)
    conflicts.append(_Conflict(r.job_key, jid, {name: getattr(recorded, name) for name in differing},
                               {name: sent[name] for name in differing}, in_batch))
    return TrackOutcome(r.job_key, jid, "conflict", decision, recorded.sheets, recorded.cost,
                        f"{where} with other figures ({', '.join(differing)}): nothing recorded for this post",
                        differing)


def _sent_figures(r: JobReport, printer: Printer) -> dict[str, object]:
    """The SENT_FIGURES of a report as an event stores them."""
    return dict(user=r.user, printer=printer.name, client_host=r.client_host, submitted_at=to_micros(r.submitted_at),
                pages=r.pages, copies=r.copies, colour_pages=r.colour_pages, duplex=r.duplex, paper=r.paper,
                size=r.size, pdl=r.pdl, document=r.document,
                paper_counts=None if r.paper_counts is None else
                {name: [count.pages, count.colour_pages] for name, count in sorted(r.paper_counts.items())},
                pages_known=r.pages_known, colour_known=r.colour_known, uncertain=r.uncertain,
                application=r.application)


def _recorded(jid: UUID, r: JobReport, printer: Printer, denied: str | None = None,
              unknown_colour: str = "colour", secured: tuple[int, str] | None = None,
              keys: Mapping[str, Person] | None = None,
              login_keys: Mapping[str, bytes] | None = None) -> PrintJob.Tracked:
    if secured is not None:
        record = partial(PrintJob.secured, expires_at=secured[0], code_digest=secured[1])
    else:
        record = PrintJob.tracked if denied is None else partial(PrintJob.denied, reason=denied)
    figures = _sent_figures(r, printer)
    if keys is not None and secured is None:
        person = keys[r.user]
        figures["document"] = seal_fields(person.key, jid, r.client_host, r.document)
        figures["client_host"] = ""
        figures["user"] = ""
        figures["person"] = person.number
    elif login_keys is not None:
        figures["document"] = seal_fields(login_keys[r.user], jid, r.client_host, r.document)
        figures["client_host"] = ""
    return record(
        jid, **figures,
        sheets=sheets_for(pages=r.pages, copies=r.copies, duplex=r.duplex),
        cost=job_cost(printer.schedule, pages=r.pages, colour_pages=r.colour_pages, copies=r.copies,
                      duplex=r.duplex, paper=r.paper, paper_counts=figures["paper_counts"],
                      colour_known=r.colour_known, unknown_colour=unknown_colour),
        schedule=printer.schedule_version,
    )


CodeDigest = Callable[[str], str]


def release_code_for(printer: Printer, entered: str | None, digest: CodeDigest | None) -> tuple[str, str, str]:
    """(code to tell the agent, digest to store, message) for a job arriving on a secure queue."""
    mode = printer.code_mode
    if mode == CODE_GENERATED and digest is not None:
        code = "".join(secrets.choice("0123456789") for _ in range(printer.code_length))
        return code, digest(code), f"held for release: your release code is {code}"
    if mode == CODE_ENTERED and digest is not None:
        if entered:
            return "", digest(entered), "held for release with the release code given with the job"
        return "", "", "held for release (no release code was given with the job: log in to release it)"
    if mode == CODE_PREDEFINED:
        return "", "", "held for release: release it with your own code (PIN)"
    return "", "", "held for release"


def _decision(printer: Printer) -> str:
    return "hold" if printer.secure else "print"


class UnknownJob(LookupError):
    pass


class HoldJob:
    """Hold a job on a secure queue: its data goes to the spool store until its owner releases it.

    Checks that the job can be held, stores its data, then records the hold. The data is kept
    only when it is the size (when declared) and SHA-256 its sender declared, so that a body
    cut short is never held in place of the job. Uploading the same data again is a no-op (an
    agent retrying); other data for a held job is refused before a byte of it is read; only
    tracked jobs on secure queues can be held.
    """

    def __init__(self, app: PageLedger, spool: SpoolWriter) -> None:
        self.app = app
        self.spool = spool

    def __call__(self, job_id: UUID, data: BinaryIO, *, sha256: str, size: int | None = None) -> PrintJob:
        app = self.app
        try:
            job: PrintJob = app.repository.get(job_id)
        except AggregateNotFoundError:
            raise UnknownJob(f"no job {job_id}") from None
        printer: Printer = app.repository.get(printer_id(app.server_id, job.printer))
        if not printer.secure:
            raise InvalidRequest({"job_id": [f"printer {job.printer} is not a secure queue: the job is not held"]})
        if job.state not in ("tracked", "secured", "held"):
            raise InvalidRequest({"job_id": [f"a {job.state} job cannot be held"]})
        if job.state == "held" and job.spool != sha256:
            raise InvalidRequest({"job_id": ["the job is already held with other data"]})
        try:
            spool, received = self.spool.write(data, sha256=sha256, size=size)
        except (SpoolMismatch, SpoolTooLarge) as exc:
            log.warning("held job %s: its data was refused and nothing of it kept (%s)", job_id, exc)
            raise
        if job.state == "held":
            return job
        try:
            job.hold(spool, received)
        except JobNotHoldable as exc:
            raise InvalidRequest({"job_id": [str(exc)]}) from None
        app.save(job)
        return job


# --- jobs replayed from a legacy database (tools/pa6_migrate) -------------------------------

class MigratedJob(NamedTuple):
    """One legacy job row as it is replayed: its facts, the cost it was charged and the
    PageLedger version of the legacy schedule that priced it (0: the printer's version in force).
    A NamedTuple: one is built per legacy row, in under a µs (a frozen dataclass took 3)."""

    legacy_id: str
    user: str
    printer: str
    client_host: str
    document: str
    submitted_at: int  # µs, UTC (the site's zone already applied)
    pages: int
    copies: int
    colour_pages: int
    duplex: bool
    paper: str
    cost: int  # 1/10,000 currency unit, as charged
    schedule: int = 0
    billing_code: str = ""


def migrated_job_key(migration: str, legacy_id: str) -> str:
    """The job key of a legacy row: its id derives from the legacy id, so a re-run finds it."""
    return f"legacy:{migration}:{legacy_id}"


class RecordMigratedJobs:
    """Record a batch of legacy jobs as PrintJob.Tracked, as the live system records a batch
    (one event a job, printers registered with it, one transaction), but with the legacy
    facts: the original time, the cost as charged and the legacy schedule, and the legacy id.

    `progress` (the migration's own aggregate, with its checkpoint event pending) is saved in
    the same transaction, so a batch and the record that it was replayed exist together or
    not at all. A job id recorded before makes the whole batch conflict (IntegrityError): the
    caller reloads its progress and resumes from it. No seat gate: history is not printing.
    The privacy setting and the personal-field seal apply as they do to a live job (TrackJobs).
    """

    def __init__(self, app: PageLedger, printers: PrinterCache, document_policy: DocumentPolicy = lambda: KEEP,
                 personal: PersonalKeys | None = None) -> None:
        self.app = app
        self.printers = printers
        self.document_policy = document_policy
        self.personal = personal

    def __call__(self, migration: str, jobs: Sequence[MigratedJob], progress: object) -> int:
        app = self.app
        by_name, new_printers = self.printers.for_names({j.printer for j in jobs})
        policy = self.document_policy()
        keys = self.personal.people_for(j.user for j in jobs) if self.personal else None
        events = []
        server, prefix = app.server_id, migrated_job_key(migration, "")
        recorded_at = PrintJob.Tracked.create_timestamp()  # one for the batch: it is one transaction
        migrated = PrintJob.migrated
        seal = FieldSealer()
        for j in jobs:
            printer = by_name[j.printer.lower()]
            jid = job_id(server, prefix + j.legacy_id)
            document = j.document if policy == KEEP else shown_document(j.document, policy)
            client_host, user, person = j.client_host, j.user, 0
            if keys is not None:  # sealed as a live job is (TrackJobs)
                sealer = keys[j.user]
                document, client_host, user, person = seal(sealer.key, jid, client_host, document), "", "", \
                    sealer.number
            pages, copies, duplex = j.pages, j.copies, j.duplex
            events.append(migrated(
                jid, recorded_at, user=user, person=person, printer=printer.name, client_host=client_host,
                submitted_at=j.submitted_at, pages=pages, copies=copies,
                sheets=sheets_for(pages=pages, copies=copies, duplex=duplex), colour_pages=j.colour_pages, duplex=duplex,
                paper=j.paper, cost=j.cost, schedule=j.schedule or printer.schedule_version, document=document,
                legacy_id=j.legacy_id, billing_code=j.billing_code))
        try:
            app.record(progress, *new_printers, events=events)  # type: ignore[arg-type]
        except Exception:
            self.printers.forget(new_printers)
            raise
        self.printers.registered(new_printers)
        return len(events)
