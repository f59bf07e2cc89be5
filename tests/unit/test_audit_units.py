"""The pure parts of audit and privacy: the seal chain's arithmetic, the document-name policy,
sealing personal fields, and the instants the CLI accepts."""
from __future__ import annotations

from types import SimpleNamespace
from uuid import uuid4

import pytest

from adapters.event_seals import GENESIS, HASH_BYTES, chain, consecutive_runs, event_hash, seal_rows
from adapters.personal_keys import open_fields, seal_fields
from domain.privacy import shown_document
from pageledger.audit_cli import parse_instant


def stored(topic="PrintJob.Tracked", state=b"\x93\x01\x02\x03", version=1):
    return SimpleNamespace(originator_id=uuid4(), originator_version=version, topic=topic, state=state)


def test_a_batch_is_one_seal_chained_to_the_one_before():
    events = [stored() for _ in range(3)]
    [(last, first, digest, hashes)] = seal_rows(GENESIS, [7, 8, 9], events)
    assert (last, first, len(digest), len(hashes)) == (9, 7, 16, 3 * HASH_BYTES)
    full = [event_hash(i, e.originator_id, e.originator_version, e.topic, e.state) for i, e in zip([7, 8, 9], events)]
    assert digest == chain(GENESIS, 7, 9, full)
    assert hashes[:HASH_BYTES] == full[0][:HASH_BYTES]
    nxt = stored()
    [(_, _, chained, _)] = seal_rows(digest, [10], [nxt])
    [(_, _, unchained, _)] = seal_rows(GENESIS, [10], [nxt])
    assert chained != unchained  # each seal depends on the one before


def test_ids_that_are_not_consecutive_are_sealed_as_runs():
    assert consecutive_runs([1, 2, 3, 7, 8, 10]) == [(0, 3), (3, 5), (5, 6)]
    events = [stored(), stored(), stored()]
    rows = seal_rows(GENESIS, [1, 2, 5], events)
    assert [(r[1], r[0]) for r in rows] == [(1, 2), (5, 5)]
    last = events[2]
    assert rows[1][2] == chain(rows[0][2], 5, 5, [event_hash(5, last.originator_id, 1, last.topic, last.state)])


def test_every_byte_of_an_event_is_in_its_hash():
    e = stored()
    base = event_hash(1, e.originator_id, 1, e.topic, e.state)
    assert event_hash(2, e.originator_id, 1, e.topic, e.state) != base
    assert event_hash(1, uuid4(), 1, e.topic, e.state) != base
    assert event_hash(1, e.originator_id, 2, e.topic, e.state) != base
    assert event_hash(1, e.originator_id, 1, "PrintJob.Denied", e.state) != base
    assert event_hash(1, e.originator_id, 1, e.topic, e.state + b"\x00") != base
    assert event_hash(1, e.originator_id.hex, 1, e.topic, e.state) == base  # SQLite stores the id as hex


@pytest.mark.parametrize("name, policy, shown", [
    ("Q3 salaries.xlsx", "keep", "Q3 salaries.xlsx"), ("Q3 salaries.xlsx", "mask", "*.xlsx"),
    ("Q3 salaries.xlsx", "omit", ""), ("README", "mask", "*"), (".bashrc", "mask", "*"),
    ("C:\\Users\\ann\\letter.DOCX", "mask", "*.docx"), ("a.b/c", "mask", "*"), ("x.tar.gz", "mask", "*.gz"),
    ("note.verylongextension", "mask", "*"), ("", "mask", ""), ("*.pdf", "mask", "*.pdf"),
])
def test_the_document_name_policy(name, policy, shown):
    assert shown_document(name, policy) == shown
    assert shown_document(shown_document(name, policy), policy) == shown_document(name, policy)  # idempotent


def test_sealed_fields_open_only_with_their_key_and_cost_no_more_than_their_length():
    key, other, job = b"k" * 32, b"o" * 32, uuid4()
    sealed = seal_fields(key, job, "pc-ann.example.org", "Q3 salaries.xlsx")
    assert len(sealed) <= len("pc-ann.example.org") + len("Q3 salaries.xlsx") + 3
    assert b"salaries" not in sealed and b"pc-ann" not in sealed
    assert open_fields(key, job, sealed) == ("pc-ann.example.org", "Q3 salaries.xlsx")
    try:
        opened = open_fields(other, job, sealed)
    except Exception:  # noqa: BLE001 - garbage that does not even decode
        opened = None
    assert opened != ("pc-ann.example.org", "Q3 salaries.xlsx")
    assert seal_fields(key, uuid4(), "pc-ann.example.org", "Q3 salaries.xlsx") != sealed  # the nonce is the job


@pytest.mark.parametrize("text, zone, end, expected", [
    ("2026-01-31T23:59:59Z", "UTC", True, 1769903999000000),
    ("2026-01-31", "UTC", True, 1769903999999999),
    ("2026-01-31", "UTC", False, 1769817600000000),
    ("2026-01-31", "Europe/Paris", False, 1769817600000000 - 3600 * 1_000_000),
])
def test_instants_and_dates_in_the_sites_zone(text, zone, end, expected):
    assert parse_instant(text, zone, end_of_day=end) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-01-31T23:59:59", "2026-13-01", ""])
def test_bad_instants_are_refused(text):
    with pytest.raises(ValueError):
        parse_instant(text, "UTC", end_of_day=True)
