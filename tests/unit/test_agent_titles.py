"""A title chosen by whoever prints can never make the server refuse (and so not account) the job."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from agent.backend import job_record, printable_title
from agent.job_options import CupsJob
from agent.pagecount import JobCount
from commands.job_reports import parse_batch


@pytest.mark.parametrize("title", ["Quarterly\x01report", "line one\nline two", "bad \udcff bytes",
                                   "nul\x00here", "del\x7f and c1\x85", "x" * 5000, "tab\tis fine"])
def test_every_title_is_posted_in_a_form_the_server_accepts(title):
    job = CupsJob(job_id=7, user="alice", title=title, copies=1, options={}, file=None)
    counts = JobCount(format="pdf", pages=2, sheets=2, colour_pages=0, colour_known=True, paper_size="A4",
                      bytes=100, copies=1, duplex=False, document_pages=2)
    now = datetime.now(timezone.utc).isoformat()
    record = job_record(job, counts, printer="office", host="printsrv1", submitted_at=now)
    [report] = parse_batch(json.dumps({"jobs": [record]}).encode())
    assert report.document == printable_title(title) and len(report.document) <= 1024


def test_a_printable_title_is_posted_as_it_is():
    assert printable_title("Budget 2027.xlsx\twith tab — ünïcode") == "Budget 2027.xlsx\twith tab — ünïcode"
