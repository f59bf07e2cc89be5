"""Secure release: release, delete, print, fail and expire held jobs (docs/secure-release.md).

With commands/jobs.py, the one module that writes PrintJob aggregates (jobs.py records them;
this one carries them through their release). A request is checked whole before anything is
written: an unknown job, someone else's job (told apart from an unknown one by nobody but an
admin), a job already released, a printer outside the job's group or a wrong code refuses the
whole request, naming the field, and records nothing — but a wrong code, which is audited as
an event on the job and counted by the throttle, so that codes cannot be guessed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from adapters.event_store import PageLedger
from adapters.personal_keys import card_digest, masked_card
from adapters.throttle import RELEASE_CODE_PREFIX
from commands.conflicts import retry_on_conflict
from commands.ports import Clock, LoginThrottle
from commands.printers import PrinterCache
from commands.validation import InvalidRequest
from domain.costs import job_cost, sheets_for
from domain.jobs import JobNotReleasable, PrintJob
from domain.printers import CODE_PREDEFINED, Printer, printer_id

log = logging.getLogger("pageledger.release")

NOT_YOURS = "no held job of yours has this id"
MAX_JOBS = 1000
MAX_WHY = 300

CodeDigest = Callable[[str], str]
PinOf = Callable[[str], str]  # login -> the user's PIN digest ("" for none)
SpoolsInUse = Callable[[Iterable[str], set[str]], set[str]]  # digests, excluded job ids -> still needed


class CodeThrottled(Exception):
    """Too many wrong release codes: wait `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many wrong release codes: try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    login: str
    admin: bool
    address: str = ""


def _job_ids(ids: Sequence[str]) -> list[UUID]:
    if not ids:
        raise InvalidRequest({"jobs": ["name at least one job"]})
    if len(ids) > MAX_JOBS:
        raise InvalidRequest({"jobs": [f"at most {MAX_JOBS} jobs at a time"]})
    out, errors = [], {}
    for i, raw in enumerate(ids):
        try:
            out.append(UUID(str(raw)))
        except ValueError:
            errors[f"jobs.{i}"] = ["not a job id"]
    if errors:
        raise InvalidRequest(errors)
    return out


def _owned(app: PageLedger, ids: list[UUID], caller: Caller) -> list[PrintJob]:
    jobs, errors = [], {}
    for i, jid in enumerate(ids):
        try:
            job: PrintJob = app.repository.get(jid)
        except AggregateNotFoundError:
            errors[f"jobs.{i}"] = [NOT_YOURS]
            continue
        if not caller.admin and job.user.strip().lower() != caller.login.strip().lower():
            errors[f"jobs.{i}"] = [NOT_YOURS]  # the same words as unknown: nobody learns it exists
            continue
        jobs.append(job)
    if errors:
        raise InvalidRequest(errors)
    return jobs


def _printer(app: PageLedger, name: str) -> Printer | None:
    try:
        return app.repository.get(printer_id(app.server_id, name))
    except AggregateNotFoundError:
        return None


class ReleaseJobs:
    """Release one, several or all of a user's held jobs at the queue's printer or, in a printer
    group, at any printer of it (pull printing). The release service then prints them."""

    def __init__(self, app: PageLedger, digest: CodeDigest, pin_of: PinOf, throttle: LoginThrottle,
                 clock: Clock) -> None:
        self.app = app
        self.digest = digest
        self.pin_of = pin_of
        self.throttle = throttle
        self.clock = clock

    def __call__(self, job_ids: Sequence[str], caller: Caller, *, printer: str | None = None,
                 code: str | None = None, by_card: bool = False) -> list[PrintJob]:
        """`by_card`: the user swiped their card at the printer, which stands for the code."""
        ids = _job_ids(job_ids)
        if len(set(ids)) != len(ids):
            raise InvalidRequest({"jobs": ["a job is named twice"]})

        def attempt() -> list[PrintJob]:
            jobs = _owned(self.app, ids, caller)
            errors: dict[str, list[str]] = {}
            for i, job in enumerate(jobs):
                if not job.releasable:
                    errors[f"jobs.{i}"] = [str(JobNotReleasable(job._why_not("released")))]
            if errors:
                raise InvalidRequest(errors)
            where = {job.id: self._where(job, printer) for job in jobs}
            if not caller.admin and not by_card:
                self._check_code(jobs, caller, code)
            now = self.clock()
            for job in jobs:
                job.release(by=caller.login, where=where[job.id], at=now)
            self.app.save(*jobs)
            return jobs

        jobs = retry_on_conflict(attempt, what=f"release {len(ids)} jobs")
        log.info("%s released %d held jobs", caller.login, len(jobs),
                 extra={"jobs": [str(j.id) for j in jobs], "by": caller.login})
        return jobs

    def _where(self, job: PrintJob, chosen: str | None) -> str:
        if chosen is None or chosen.lower() == job.printer.lower():
            return job.printer
        own, other = _printer(self.app, job.printer), _printer(self.app, chosen)
        group = own.group if own is not None else ""
        if other is None or not other.secure or not group or other.group != group:
            why = (f"{chosen} is not a printer of the group of {job.printer}" if group
                   else f"{job.printer} is in no printer group: its jobs print on {job.printer} only")
            raise InvalidRequest({"printer": [why]})
        return other.name

    def _check_code(self, jobs: list[PrintJob], caller: Caller, code: str | None) -> None:
        needing: list[tuple[PrintJob, str]] = []  # each job with the digest its code must have
        pin = None
        queues: dict[str, Printer | None] = {}
        for job in jobs:
            if job.printer not in queues:
                queues[job.printer] = _printer(self.app, job.printer)
            queue = queues[job.printer]
            if queue is not None and queue.code_mode == CODE_PREDEFINED:
                pin = self.pin_of(job.user) if pin is None else pin
                needing.append((job, pin))
            elif job.code_digest:
                needing.append((job, job.code_digest))
        if not needing:
            return
        given = (code or "").strip()
        reservation = self.throttle.reserve(f"{RELEASE_CODE_PREFIX}{caller.login}", caller.address)
        if reservation.retry_after:
            raise CodeThrottled(reservation.retry_after)
        digest = self.digest(given) if given else ""
        wrong = [job for job, expected in needing if not expected or digest != expected]
        if not wrong:
            self.throttle.release(reservation)
            return
        now = self.clock()
        for job in wrong:  # nothing else was changed on them yet: only the audit is saved
            job.refuse_code(by=caller.login, at=now)
        self.app.save(*wrong)
        log.warning("wrong release code from %s for %d jobs", caller.login, len(wrong),
                    extra={"by": caller.login, "address": caller.address})
        if not given:
            raise InvalidRequest({"code": ["these jobs need their release code"]})
        raise InvalidRequest({"code": ["wrong release code"]})


class DeleteJobs:
    """Delete held jobs (their owner or an admin); their data goes with them."""

    def __init__(self, app: PageLedger, spool_remover: "SpoolRemover", clock: Clock) -> None:
        self.app = app
        self.remove_spools = spool_remover
        self.clock = clock

    def __call__(self, job_ids: Sequence[str], caller: Caller) -> list[PrintJob]:
        ids = _job_ids(job_ids)

        def attempt() -> list[PrintJob]:
            jobs = _owned(self.app, ids, caller)
            errors: dict[str, list[str]] = {}
            for i, job in enumerate(jobs):
                try:
                    job.delete(by=caller.login, at=self.clock())
                except JobNotReleasable as exc:
                    errors[f"jobs.{i}"] = [str(exc)]
            if errors:
                raise InvalidRequest(errors)
            self.app.save(*jobs)
            return jobs

        jobs = retry_on_conflict(attempt, what=f"delete {len(ids)} jobs")
        self.remove_spools(jobs)
        log.info("%s deleted %d held jobs", caller.login, len(jobs), extra={"jobs": [str(j.id) for j in jobs]})
        return jobs


class SpoolRemover:
    """Removes the data of jobs that no longer need it, unless another waiting job has the
    same data (the store keeps one file per content)."""

    def __init__(self, remove: Callable[[str], bool], in_use: SpoolsInUse) -> None:
        self.remove = remove
        self.in_use = in_use

    def __call__(self, jobs: Iterable[PrintJob]) -> int:
        jobs = list(jobs)
        digests = {getattr(j, "spool", "") for j in jobs} - {""}
        if not digests:
            return 0
        needed = self.in_use(digests, {str(j.id) for j in jobs})
        return sum(self.remove(d) for d in digests - needed)


class RecordReleaseOutcome:
    """What the release service reports: printed (CUPS completed the job), held again (the
    printer is stopped or refused it for now: the user sees why) or failed for good."""

    def __init__(self, app: PageLedger, printers: PrinterCache, spool_remover: SpoolRemover, clock: Clock,
                 unknown_colour_charge: str | Callable[[], str] = "colour") -> None:
        # The site setting in force, as commands.jobs prices a job when it is tracked.
        self._unknown_colour_charge = (unknown_colour_charge if callable(unknown_colour_charge)
                                       else lambda: unknown_colour_charge)
        self.app = app
        self.printers = printers
        self.remove_spools = spool_remover
        self.clock = clock

    @property
    def unknown_colour_charge(self) -> str:
        return self._unknown_colour_charge()

    def printed(self, job_id: UUID, *, cups_job: str) -> PrintJob:
        def attempt() -> tuple[PrintJob, bool]:
            job = self._load(job_id)
            if job.state == "printed":
                return job, False
            if job.state != "released":
                raise InvalidRequest({"job_id": [f"a {job.state} job cannot have printed"]})
            where = getattr(job, "released_to", job.printer)
            by_name, new = self.printers.for_names([where])
            printer = by_name[where.lower()]
            cost = job_cost(printer.schedule, pages=job.pages, colour_pages=job.colour_pages, copies=job.copies,
                            duplex=job.duplex, paper=job.paper, paper_counts=getattr(job, "paper_counts", None),
                            colour_known=getattr(job, "colour_known", True), unknown_colour=self.unknown_colour_charge)
            job.print_(printer=printer.name, at=self.clock(), cost=cost, schedule=printer.schedule_version,
                       sheets=sheets_for(pages=job.pages, copies=job.copies, duplex=job.duplex),
                       cups_job=cups_job[:200])
            self.app.save(*new, job)
            self.printers.registered(new)
            return job, True

        job, recorded = retry_on_conflict(attempt, what=f"record job {job_id} printed")
        if recorded:
            self.remove_spools([job])
            log.info("held job %s printed on %s (%s)", job_id, job.printed_on, cups_job,
                     extra={"job_id": str(job_id), "printer": job.printed_on, "cups_job": cups_job})
        return job

    def failed(self, job_id: UUID, *, why: str, held: bool) -> PrintJob:
        why = " ".join(why.split())[:MAX_WHY] or "no reason given"

        def attempt() -> PrintJob:
            job = self._load(job_id)
            if job.fail_release(why, self.clock(), held=held):
                self.app.save(job)
            return job

        job = retry_on_conflict(attempt, what=f"record job {job_id} not printed")
        log.warning("held job %s was not printed (%s): %s", job_id, "held again" if held else "failed", why,
                    extra={"job_id": str(job_id)})
        return job

    def _load(self, job_id: UUID) -> PrintJob:
        try:
            return self.app.repository.get(job_id)
        except AggregateNotFoundError:
            raise InvalidRequest({"job_id": ["no such job"]}) from None


class ExpireJobs:
    """Expire the held jobs whose hold time is over: recorded as Expired, never charged, data removed."""

    def __init__(self, app: PageLedger, spool_remover: SpoolRemover, clock: Clock) -> None:
        self.app = app
        self.remove_spools = spool_remover
        self.clock = clock

    def __call__(self, job_ids: Iterable[str]) -> int:
        expired: list[PrintJob] = []
        for raw in job_ids:
            def attempt(jid: UUID = UUID(raw)) -> PrintJob | None:
                job: PrintJob = self.app.repository.get(jid)
                if job.expire(self.clock()):
                    self.app.save(job)
                    return job
                return None

            job = retry_on_conflict(attempt, what=f"expire held job {raw}")
            if job is not None:
                expired.append(job)
        self.remove_spools(expired)
        if expired:
            log.info("%d held jobs expired unreleased; their data was removed", len(expired))
        return len(expired)


class HeldData:
    """A released job's bytes, for the release service to print (only while it is released)."""

    def __init__(self, app: PageLedger, open_spool: Callable[[str], BinaryIO]) -> None:
        self.app = app
        self.open_spool = open_spool

    def __call__(self, job_id: UUID) -> tuple[BinaryIO, str]:
        try:
            job: PrintJob = self.app.repository.get(job_id)
        except AggregateNotFoundError:
            raise InvalidRequest({"job_id": ["no such job"]}) from None
        if job.state != "released":
            raise InvalidRequest({"job_id": [f"the job is {job.state}, not released: its data is not handed out"]})
        try:
            return self.open_spool(job.spool), job.spool
        except FileNotFoundError:
            raise InvalidRequest({"job_id": ["the job's data is no longer on the server"]}) from None


@dataclass(frozen=True)
class SwipeOutcome:
    outcome: str  # released | unknown card | nothing to release
    user: str
    jobs: tuple[str, ...]


class SwipeCard:
    """A card swiped at a secure queue's reader releases all of its holder's waiting jobs on that
    queue to that printer. An unknown card, a swipe with nothing to release and a line without a
    card number are recorded on the printer (CardSwipeUnmatched)."""

    def __init__(self, app: PageLedger, card_holder: Callable[[str], str | None],
                 waiting_of: Callable[[str, str], list[str]], release_jobs: ReleaseJobs, clock: Clock) -> None:
        self.app = app
        self.card_holder = card_holder  # card number -> login of an active user, or None
        self.waiting_of = waiting_of  # (login, printer) -> ids of held jobs with their data on the server
        self.release_jobs = release_jobs
        self.clock = clock

    def __call__(self, printer: str, card: str, problem: str = "") -> SwipeOutcome:
        queue = _printer(self.app, printer)
        if queue is None or not queue.secure:
            raise InvalidRequest({"printer": [f"{printer} is not a secure queue"]})
        if problem or not card:
            self._unmatched(printer, card[:64], problem or "empty card line")
            raise InvalidRequest({"card": [problem or "empty card line"]})
        login = self.card_holder(card)
        if login is None:
            self._unmatched(printer, card[:64], "unknown card")
            log.warning("unknown card swiped at %s", printer, extra={"printer": printer})
            return SwipeOutcome("unknown card", "", ())
        ids = self.waiting_of(login, queue.name)
        if not ids:
            self._unmatched(printer, card[:64], "nothing to release", user=login)
            return SwipeOutcome("nothing to release", login, ())
        jobs = self.release_jobs(ids, Caller(login, admin=False, address=f"card reader of {printer}"),
                                 printer=queue.name, by_card=True)
        return SwipeOutcome("released", login, tuple(str(j.id) for j in jobs))

    def _unmatched(self, printer: str, card: str, reason: str, user: str = "") -> None:
        # The number itself is never recorded: its keyed digest (the same card is recognised
        # across swipes) and its last 4 characters for the admin (adapters.personal_keys).
        digest, masked = card_digest(getattr(self.app, "privacy_secret", None), card), masked_card(card)

        def attempt() -> None:
            p = _printer(self.app, printer)
            p.record_unmatched_swipe(card=masked, reason=reason[:200], at=self.clock(), card_digest=digest, user=user)
            self.app.save(p)

        retry_on_conflict(attempt, what=f"record a card swipe at {printer}")


class CardReaders:
    """The card readers of every secure queue, for the release service to connect to."""

    def __init__(self, app: PageLedger, printer_names: Callable[[], list[str]]) -> None:
        self.app = app
        self.printer_names = printer_names

    def __call__(self) -> list[dict]:
        found = []
        for name in self.printer_names():
            p = _printer(self.app, name)
            if p is not None and p.secure and p.card_reader:
                found.append({"printer": p.name, **p.card_reader})
        return found
