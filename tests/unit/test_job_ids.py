"""A job's id and the bulk-built event of a migrated job are the same values the plain
constructions give: the migration's shortcuts change the cost, never the result."""
from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

import pytest

from domain.jobs import PrintJob, job_id


def test_a_job_id_is_the_uuid5_of_its_server_and_key():
    for server, key in (("pageledger", "a"), ("site-1", "legacy:pa6:123456"), ("s", "ü" * 300), ("", "")):
        got = job_id(server, key)
        assert got == uuid5(NAMESPACE_URL, f"pageledger:{server}:job:{key}")
        assert got.version == 5


def test_a_migrated_jobs_event_equals_the_tracked_event_with_the_same_facts():
    facts = dict(user="alice", printer="hq-1", client_host="", submitted_at=1_600_000_000_000_000, pages=3,
                 copies=2, sheets=4, colour_pages=1, duplex=True, paper="A4", cost=1234, schedule=2,
                 document=b"sealed", legacy_id="77", billing_code="B-1")
    tracked = PrintJob.tracked(job_id("s", "legacy:pa6:77"), size=0, pdl="unknown", **facts)
    migrated = PrintJob.migrated(job_id("s", "legacy:pa6:77"), tracked.timestamp, **facts)
    assert migrated == tracked
    assert vars(migrated) == vars(tracked)
    job = PrintJob.__new__(PrintJob)
    migrated.apply(job)
    assert (job.legacy_id, job.sheets, job.cost) == ("77", 4, 1234)


def test_a_migrated_job_missing_a_fact_is_refused():
    with pytest.raises(TypeError):
        PrintJob.migrated(job_id("s", "k"), None, user="alice")  # type: ignore[call-arg]
