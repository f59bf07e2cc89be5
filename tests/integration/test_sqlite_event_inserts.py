"""The SQLite event store inserts a batch in a few statements (adapters.sqlite_writes): every
event gets the rowid it is stored under as its notification id, in the order given, the seals
still verify, and a batch that repeats a stored event is refused whole."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from eventsourcing.persistence import IntegrityError

from adapters.event_seals import RawLog, check_seals
from domain.jobs import PrintJob, job_id


@pytest.fixture
def sqlite_runtime(tmp_path):
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings

    rt = build_runtime(Settings.load(environ={}, database_url=f"sqlite:///{tmp_path / 'pageledger.db'}",
                                     data_dir=tmp_path / "var"))
    yield rt
    rt.close()


def jobs(prefix: str, n: int) -> list:
    at = PrintJob.Tracked.create_timestamp()
    return [PrintJob.migrated(job_id("srv", f"{prefix}{i}"), at, user="alice", printer="hq", client_host="pc1",
                              submitted_at=int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6) + i,
                              pages=1, copies=1, sheets=1, colour_pages=0, duplex=False, paper="A4", cost=500,
                              schedule=1, document=f"{prefix}{i}.pdf", legacy_id=str(i), billing_code="")
            for i in range(n)]


def test_a_batch_over_several_statements_gets_its_rowids_in_order_and_verifies(sqlite_runtime):
    recorder = sqlite_runtime.app.recorder
    first = jobs("a", 3)
    sqlite_runtime.app.record(events=first)
    batch = jobs("b", 1234)  # three statements of at most 500 rows
    ids = recorder.insert_events([sqlite_runtime.app.mapper.to_stored_event(e) for e in batch])
    with recorder.datastore.transaction(commit=False) as cur:
        cur.execute(f"SELECT rowid, originator_id FROM {recorder.events_table_name} ORDER BY rowid")
        stored = [(int(r[0]), r[1]) for r in cur.fetchall()]
    assert [oid for _, oid in stored] == [e.originator_id.hex for e in first + batch]
    assert list(ids) == [rowid for rowid, _ in stored[3:]]
    assert check_seals(RawLog(recorder)).findings == []


def test_a_batch_repeating_a_stored_event_is_refused_whole(sqlite_runtime):
    sqlite_runtime.app.record(events=jobs("a", 2))
    again = jobs("c", 700) + jobs("a", 1)  # the repeat lies in the second statement
    with pytest.raises(IntegrityError):
        sqlite_runtime.app.record(events=again)
    recorder = sqlite_runtime.app.recorder
    with recorder.datastore.transaction(commit=False) as cur:
        cur.execute(f"SELECT count(*) FROM {recorder.events_table_name}")
        assert cur.fetchone()[0] == 2
