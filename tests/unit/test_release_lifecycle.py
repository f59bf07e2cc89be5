"""A held job's lifecycle on the PrintJob aggregate (domain.jobs), without any I/O."""
import uuid

import pytest

from domain.jobs import JobNotReleasable, PrintJob

FACTS = dict(user="alice", printer="vault", client_host="h", submitted_at=1, pages=2, copies=3, sheets=6,
             colour_pages=1, duplex=False, paper="A4", size=10, pdl="pdf", cost=900, schedule=1, document="d")


def secured() -> PrintJob:
    job = PrintJob.secured(uuid.uuid4(), expires_at=100, code_digest="", **FACTS).mutate(None)
    job.hold("a" * 64, 10)
    return job


def test_held_released_printed_once_with_the_printers_price():
    job = secured()
    assert job.state == "held" and job.releasable
    job.release(by="alice", where="lobby", at=5)
    assert (job.state, job.released_to) == ("released", "lobby")
    with pytest.raises(JobNotReleasable, match="already released"):
        job.release(by="alice", where="lobby", at=6)
    assert job.print_(printer="lobby", at=7, sheets=6, cost=300, schedule=2, cups_job="x")
    assert not job.print_(printer="lobby", at=8, sheets=6, cost=300, schedule=2, cups_job="x")
    printed = [e for e in job.collect_events() if type(e).__name__ == "Printed"]
    assert [(e.printer, e.cost, e.pages, e.copies, e.user) for e in printed] == [("lobby", 300, 2, 3, "alice")]


def test_a_failed_release_is_held_again_or_failed_and_can_be_released_again():
    job = secured()
    job.release(by="alice", where="vault", at=5)
    assert job.fail_release("printer vault is stopped", 6, held=True)
    assert (job.state, job.release_failure) == ("held", "printer vault is stopped")
    job.release(by="alice", where="vault", at=7)
    job.fail_release("CUPS aborted the job", 8, held=False)
    assert job.state == "failed" and job.releasable
    assert not job.fail_release("again", 9, held=True)  # only a released job can fail


def test_deleted_or_expired_jobs_go_no_further():
    job = secured()
    job.delete(by="alice", at=5)
    with pytest.raises(JobNotReleasable):
        job.release(by="alice", where="vault", at=6)
    assert not job.expire(7)
    other = secured()
    assert other.expire(200) and other.state == "expired"
    with pytest.raises(JobNotReleasable):
        other.delete(by="alice", at=201)


def test_an_ordinary_tracked_job_is_not_releasable():
    job = PrintJob.tracked(uuid.uuid4(), **FACTS).mutate(None)
    with pytest.raises(JobNotReleasable, match="not on a secure queue"):
        job.release(by="alice", where="vault", at=1)
