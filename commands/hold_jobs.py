"""Hold a job on a secure queue: its data is in the spool store until its owner releases it."""
from __future__ import annotations

from typing import Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.application import PageLedger
from commands.validation import InvalidRequest
from domain.jobs import JobNotHoldable, PrintJob
from domain.printers import Printer, printer_id


class UnknownJob(LookupError):
    pass


def hold_job(app: PageLedger, job_id: UUID, store: Callable[[], tuple[str, int]]) -> PrintJob:
    """Check that the job can be held, store its data (`store` returns its SHA-256 and size),
    then record the hold. Uploading the same data again is a no-op (an agent retrying);
    only tracked jobs on secure queues can be held."""
    try:
        job: PrintJob = app.repository.get(job_id)
    except AggregateNotFoundError:
        raise UnknownJob(f"no job {job_id}") from None
    printer: Printer = app.repository.get(printer_id(app.server_id, job.printer))
    if not printer.secure:
        raise InvalidRequest({"job_id": [f"printer {job.printer} is not a secure queue: the job is not held"]})
    if job.state not in ("tracked", "held"):
        raise InvalidRequest({"job_id": [f"a {job.state} job cannot be held"]})
    spool, size = store()
    if job.state == "held":
        if job.spool != spool:
            raise InvalidRequest({"job_id": ["the job is already held with other data"]})
        return job
    try:
        job.hold(spool, size)
    except JobNotHoldable as exc:
        raise InvalidRequest({"job_id": [str(exc)]}) from None
    app.save(job)
    return job
