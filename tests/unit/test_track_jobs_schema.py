"""The two faces of batch validation (msgspec fast path, marshmallow messages) agree."""
import json

import msgspec
import pytest
from marshmallow import ValidationError

from commands.job_reports import TrackJobsSchema, _Batch, parse_batch
from commands.validation import InvalidRequest, flatten_messages
from tools.sample_jobs import sample_jobs


def body(jobs) -> bytes:
    return json.dumps({"jobs": jobs}).encode()


def test_sample_jobs_are_valid_reports():
    reports = parse_batch(body(list(sample_jobs(50))))
    assert len(reports) == 50
    assert reports[0].submitted_at.tzinfo is not None
    assert reports[0].copies >= 1


def test_every_bad_field_is_named():
    bad = dict(next(sample_jobs(1)))
    bad.update(pages=-1, copies=0, pdl="exe", submitted_at="2026-01-01T00:00:00")  # naive time
    good = next(sample_jobs(1, seed=2))
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([good, bad]))
    assert set(err.value.errors) == {"jobs.1.pages", "jobs.1.copies", "jobs.1.pdl", "jobs.1.submitted_at"}


GOOD = next(sample_jobs(1))
CASES = [
    ({"pages": 2, "colour_pages": 3}, "jobs.0.colour_pages"),
    ({"pages": "2"}, "jobs.0.pages"),
    ({"pages": 2.5}, "jobs.0.pages"),
    ({"duplex": "yes"}, "jobs.0.duplex"),
    ({"duplex": 1}, "jobs.0.duplex"),
    ({"user": ""}, "jobs.0.user"),
    ({"job_key": "k" * 256}, "jobs.0.job_key"),
    ({"copies": 10_001}, "jobs.0.copies"),
    ({"paper": ""}, "jobs.0.paper"),
    ({"submitted_at": "2026-13-01T00:00:00Z"}, "jobs.0.submitted_at"),
    ({"release_code": ""}, "jobs.0.release_code"),
    ({"document": 5}, "jobs.0.document"),
]


# Several bad fields of one job: the answer names each of them.
COMBINED = [
    ({"pages": 2, "colour_pages": 3, "copies": 0}, {"jobs.0.colour_pages", "jobs.0.copies"}),
    ({"pages": 2, "colour_pages": 3, "pdl": "exe", "user": ""},
     {"jobs.0.colour_pages", "jobs.0.pdl", "jobs.0.user"}),
    ({"pages": 2, "colour_pages": 3, "submitted_at": "2026-01-01T00:00:00"},  # naive time
     {"jobs.0.colour_pages", "jobs.0.submitted_at"}),
    # colour_pages is compared with pages only when both are valid whole numbers
    ({"pages": "2", "colour_pages": 3}, {"jobs.0.pages"}),
    ({"pages": -1, "colour_pages": 3}, {"jobs.0.pages"}),
    ({"pages": 2, "colour_pages": 2.5, "copies": 0}, {"jobs.0.colour_pages", "jobs.0.copies"}),
]
# Edge values both faces accept.
ACCEPTED = [{"pages": 3, "colour_pages": 3}, {"pages": 0, "colour_pages": 0}, {"copies": 10_000},
            {"release_code": None}, {"size": 1 << 40}, {"job_key": "k" * 255}, {"document": ""}]


@pytest.mark.parametrize("change,field", CASES)
def test_each_kind_of_bad_value_is_refused_and_named(change, field):
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([dict(GOOD, **change)]))
    assert field in err.value.errors


@pytest.mark.parametrize("change,fields", COMBINED)
def test_colour_pages_above_pages_is_named_with_the_other_bad_fields_of_the_job(change, fields):
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([next(sample_jobs(1, seed=2)), dict(GOOD, **change)]))
    assert set(err.value.errors) == {f.replace("jobs.0.", "jobs.1.") for f in fields}


@pytest.mark.parametrize("change", [c for c, _ in CASES] + [c for c, _ in COMBINED] + ACCEPTED)
def test_msgspec_and_marshmallow_accept_and_refuse_the_same_jobs(change):
    raw = body([dict(GOOD, **change)])
    try:
        msgspec.json.decode(raw, type=_Batch)
        fast_refuses = False
    except msgspec.ValidationError:
        fast_refuses = True
    try:
        TrackJobsSchema().load(json.loads(raw))
        named = set()
    except ValidationError as err:
        named = set(flatten_messages(err.messages))
    assert fast_refuses == bool(named), (change, named)
    if fast_refuses:  # marshmallow, not the fallback on msgspec's message, names the fields
        assert named and all(f.startswith("jobs.0.") for f in named)


def test_missing_required_fields_are_named():
    job = {k: v for k, v in GOOD.items() if k not in ("user", "pages")}
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([job]))
    assert {"jobs.0.user", "jobs.0.pages"} <= set(err.value.errors)


def test_unknown_fields_from_newer_agents_are_ignored_and_defaults_apply():
    job = {k: v for k, v in GOOD.items() if k in ("job_key", "user", "printer", "submitted_at", "pages")}
    [report] = parse_batch(body([dict(job, colour_profile="vivid")]))
    assert (report.copies, report.duplex, report.pdl, report.paper) == (1, False, "unknown", "unknown")


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]", b'{"jobs": []}', b'{"jobs": "x"}', b"{}",
                                 json.dumps({"jobs": [GOOD] * 5001}).encode()])
def test_empty_malformed_and_oversized_batches_are_refused(raw):
    with pytest.raises(InvalidRequest) as err:
        parse_batch(raw)
    assert err.value.errors
