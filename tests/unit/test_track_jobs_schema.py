"""The two faces of batch validation (msgspec fast path, marshmallow messages) agree."""
import json
import re
import sys
import time
import unicodedata
from datetime import datetime, timezone

import msgspec
import pytest
from marshmallow import ValidationError

from commands.job_reports import (
    FORBIDDEN, MAX_BATCH, check_with_schema, decode_batch, latest_submitted_at, parse_batch,
)
from commands.validation import InvalidRequest, flatten_messages
from domain.units import to_micros
from tools.sample_jobs import sample_jobs

# The server's clock in these tests (the sample jobs were printed in January 2026).
NOW = to_micros(datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc))
LATEST = latest_submitted_at(NOW)


def body(jobs) -> bytes:
    return json.dumps({"jobs": jobs}).encode()


def test_sample_jobs_are_valid_reports():
    reports = parse_batch(body(list(sample_jobs(50))), NOW)
    assert len(reports) == 50
    assert reports[0].submitted_at.tzinfo is not None
    assert reports[0].copies >= 1


def test_every_bad_field_is_named():
    bad = dict(next(sample_jobs(1)))
    bad.update(pages=-1, copies=0, pdl="exe", submitted_at="2026-01-01T00:00:00")  # naive time
    good = next(sample_jobs(1, seed=2))
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([good, bad]), NOW)
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
    # Control characters: PostgreSQL text holds no NUL, and no read model shows the others.
    *(({name: "off\u0000ice"}, f"jobs.0.{name}")
      for name in ("job_key", "user", "printer", "client_host", "paper", "release_code", "document")),
    *(({name: f"a{c}b"}, f"jobs.0.{name}")
      for name in ("job_key", "user", "printer", "client_host", "paper", "release_code")
      for c in ("\t", "\n", "\x1b", "\x7f", "\x85", "\x9f", "\u200b", "\u202e", "\ufeff", "\u2028",
                "\u2029", "\U000e0041")),
    ({"user": "bob\n"}, "jobs.0.user"),  # `$` would match before a final newline
    ({"document": "a\nb"}, "jobs.0.document"),
    ({"document": "a\rb"}, "jobs.0.document"),
    ({"document": "a\x1bb"}, "jobs.0.document"),
    ({"document": "a\x7fb"}, "jobs.0.document"),
    ({"document": "a\x85b"}, "jobs.0.document"),
    # Unpaired surrogates have no UTF-8 form (msgspec cannot even decode them).
    ({"user": "a\ud800b"}, "jobs.0.user"),
    ({"document": "a\udce9b"}, "jobs.0.document"),
    # Blank after normalisation (str.strip's white space): nobody's login, no seat to check.
    *(({"user": blank}, "jobs.0.user") for blank in (" ", "   ", "\t", "\u00a0", "\u001e", "\u3000", " \u2003 ")),
    ({"printer": " "}, "jobs.0.printer"),
    ({"job_key": "\u00a0"}, "jobs.0.job_key"),
    ({"paper": " "}, "jobs.0.paper"),
    ({"release_code": " "}, "jobs.0.release_code"),
    # Impressions (pages × copies) within what the INTEGER sheets and BIGINT money hold.
    ({"pages": 1_000_000, "copies": 10_000, "colour_pages": 0}, "jobs.0.pages"),
    ({"pages": 1_000, "copies": 1_001, "colour_pages": 0}, "jobs.0.pages"),
    # Times from 1970 to a day after the server's clock.
    ({"submitted_at": "0001-01-01T00:00:00+23:59"}, "jobs.0.submitted_at"),
    ({"submitted_at": "9999-12-31T23:59:59-23:59"}, "jobs.0.submitted_at"),
    ({"submitted_at": "1969-12-31T23:59:59.999999Z"}, "jobs.0.submitted_at"),
    ({"submitted_at": "1970-01-01T00:59:59+01:00"}, "jobs.0.submitted_at"),
    ({"submitted_at": "2026-06-02T12:00:00.000001Z"}, "jobs.0.submitted_at"),
    ({"submitted_at": "2026-06-02T11:00:01-01:00"}, "jobs.0.submitted_at"),
    # Per paper size counts (issue 19): they add up to the job's figures, sizes are names.
    ({"pages": 3, "colour_pages": 1, "paper_counts": {"A4": {"pages": 2, "colour_pages": 1}}}, "jobs.0.paper_counts"),
    ({"pages": 3, "colour_pages": 1, "paper_counts": {"A4": {"pages": 3, "colour_pages": 0}}}, "jobs.0.paper_counts"),
    ({"pages": 3, "colour_pages": 2, "paper_counts": {"A4": {"pages": 1, "colour_pages": 2},
                                                      "A3": {"pages": 2, "colour_pages": 0}}}, "jobs.0.paper_counts"),
    ({"pages": 3, "colour_pages": 0, "paper_counts": {"A\n4": {"pages": 3}}}, "jobs.0.paper_counts"),
    ({"pages": 3, "colour_pages": 0, "paper_counts": {" ": {"pages": 3}}}, "jobs.0.paper_counts"),
    ({"pages": 3, "colour_pages": 0, "paper_counts": {"A" * 33: {"pages": 3}}}, "jobs.0.paper_counts"),
    ({"pages": 3, "colour_pages": 0, "paper_counts": {"A4": {"pages": -1}, "A3": {"pages": 4}}}, "jobs.0.paper_counts"),
    ({"pages": 3, "colour_pages": 0, "paper_counts": {"A4": {"pages": "3"}}}, "jobs.0.paper_counts"),
    ({"pages": 3, "colour_pages": 0, "paper_counts": {"A4": 3}}, "jobs.0.paper_counts"),
    ({"pages": 33, "colour_pages": 0, "paper_counts": {f"S{i}": {"pages": 1} for i in range(33)}},
     "jobs.0.paper_counts"),
    ({"colour_known": "no"}, "jobs.0.colour_known"),
    ({"pages_known": 0}, "jobs.0.pages_known"),
    ({"uncertain": "a\x1bb"}, "jobs.0.uncertain"),
    ({"uncertain": "x" * 256}, "jobs.0.uncertain"),
    # The printing application (issue 16): checked as a document name is, at most 128 characters.
    ({"application": "Libre\x00Office"}, "jobs.0.application"),
    ({"application": "Writer\n"}, "jobs.0.application"),
    ({"application": "\x85"}, "jobs.0.application"),
    ({"application": "\ud800"}, "jobs.0.application"),
    ({"application": "x" * 129}, "jobs.0.application"),
    ({"application": 7}, "jobs.0.application"),
    ({"application": None}, "jobs.0.application"),
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
    ({"pages": 1_000_000, "copies": 2, "colour_pages": 0, "user": " ", "printer": "a\x00",
      "submitted_at": "0001-01-01T00:00:00+23:59"},
     {"jobs.0.pages", "jobs.0.user", "jobs.0.printer", "jobs.0.submitted_at"}),
    ({"pages": 1_000_000, "copies": 2, "colour_pages": 1_000_001}, {"jobs.0.pages", "jobs.0.colour_pages"}),
]
# Edge values both faces accept.
ACCEPTED = [{"pages": 3, "colour_pages": 3}, {"pages": 0, "colour_pages": 0}, {"copies": 10_000},
            {"release_code": None}, {"size": 1 << 40}, {"job_key": "k" * 255}, {"document": ""},
            {"pages": 1_000, "copies": 1_000, "colour_pages": 0}, {"pages": 1_000_000, "copies": 1, "colour_pages": 0},
            {"pages": 100, "copies": 10_000, "colour_pages": 0},
            {"submitted_at": "1970-01-01T00:00:00Z"}, {"submitted_at": "1970-01-01T01:00:00+01:00"},
            {"submitted_at": "2026-06-02T12:00:00Z"}, {"submitted_at": "2026-06-02T13:59:00+01:59"},
            {"user": "Jöhn Smith"}, {"user": " bob "}, {"user": "\u00a0bob"}, {"printer": "офис-2"},
            {"client_host": ""}, {"client_host": "ws-12.example.org"}, {"user": "山田"},
            {"document": "Report\tQ3.pdf"}, {"document": "\u200fשלום\u200e.docx"}, {"document": "a\u2028b"},
            {"document": "   "}, {"document": "emoji \U0001f5a8\ufe0f"}, {"release_code": "4711"},
            {"pages": 3, "colour_pages": 1, "paper_counts": {"A4": {"pages": 2, "colour_pages": 1}, "A3": {"pages": 1}},
             "paper": "mixed"},
            {"pages": 0, "colour_pages": 0, "paper_counts": {}}, {"paper_counts": None},
            {"colour_known": False, "pages_known": False, "uncertain": "Ghostscript took longer than 20 s"},
            {"application": ""}, {"application": "x" * 128}, {"application": "Microsoft\u00ae Word"},
            {"application": "Skia/PDF m120"}, {"application": "\u200f\u05d5\u05d5\u05e8\u05d3"}]


@pytest.mark.parametrize("change,field", CASES)
def test_each_kind_of_bad_value_is_refused_and_named(change, field):
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([dict(GOOD, **change)]), NOW)
    assert any(named == field or named.startswith(field + ".") for named in err.value.errors), err.value.errors


@pytest.mark.parametrize("change,fields", COMBINED)
def test_colour_pages_above_pages_is_named_with_the_other_bad_fields_of_the_job(change, fields):
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([next(sample_jobs(1, seed=2)), dict(GOOD, **change)]), NOW)
    assert set(err.value.errors) == {f.replace("jobs.0.", "jobs.1.") for f in fields}


@pytest.mark.parametrize("change", [c for c, _ in CASES] + [c for c, _ in COMBINED] + ACCEPTED)
def test_msgspec_and_marshmallow_accept_and_refuse_the_same_jobs(change):
    raw = body([dict(GOOD, **change)])
    try:
        decode_batch(raw, LATEST)
        fast_refuses = False
    except (msgspec.ValidationError, msgspec.DecodeError):
        fast_refuses = True
    try:
        check_with_schema(json.loads(raw), LATEST)
        named = set()
    except ValidationError as err:
        named = set(flatten_messages(err.messages))
    assert fast_refuses == bool(named), (change, named)
    if fast_refuses:  # marshmallow, not the fallback on msgspec's message, names the fields
        assert named and all(f.startswith("jobs.0.") for f in named)


def test_missing_required_fields_are_named():
    job = {k: v for k, v in GOOD.items() if k not in ("user", "pages")}
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([job]), NOW)
    assert {"jobs.0.user", "jobs.0.pages"} <= set(err.value.errors)


def test_unknown_fields_from_newer_agents_are_ignored_and_defaults_apply():
    job = {k: v for k, v in GOOD.items() if k in ("job_key", "user", "printer", "submitted_at", "pages")}
    [report] = parse_batch(body([dict(job, colour_profile="vivid")]), NOW)
    assert (report.copies, report.duplex, report.pdl, report.paper) == (1, False, "unknown", "unknown")


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]", b'{"jobs": []}', b'{"jobs": "x"}', b"{}",
                                 json.dumps({"jobs": [GOOD] * 5001}).encode()])
def test_empty_malformed_and_oversized_batches_are_refused(raw):
    with pytest.raises(InvalidRequest) as err:
        parse_batch(raw, NOW)
    assert err.value.errors


@pytest.mark.parametrize("jobs", [[GOOD] * (MAX_BATCH + 1), [{"pages": "not a job"}] * (MAX_BATCH + 1), []])
def test_a_batch_of_the_wrong_length_is_refused_naming_jobs_before_any_job_is_decoded(jobs):
    raw = body(jobs)
    started = time.perf_counter()
    with pytest.raises(InvalidRequest) as err:
        parse_batch(raw, NOW)
    elapsed = time.perf_counter() - started
    assert set(err.value.errors) == {"jobs"}  # not 5,001 bad jobs named one by one
    assert elapsed < 0.05, elapsed  # marshmallow alone takes ~0.5 s for 5,001 jobs


def test_a_document_title_may_hold_tabs_and_bidi_marks_as_sent():
    [report] = parse_batch(body([dict(GOOD, document="\u200fQ3\tplan")]), NOW)
    assert report.document == "\u200fQ3\tplan"


def test_the_latest_time_follows_the_clock_it_is_given():
    job = dict(GOOD, submitted_at="2030-01-01T00:00:00Z")
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body([job]), NOW)
    assert err.value.errors == {"jobs.0.submitted_at": ["more than one day after the server's time"]}
    assert parse_batch(body([job]), to_micros(datetime(2029, 12, 31, 1, tzinfo=timezone.utc)))


def test_the_forbidden_characters_are_every_control_format_separator_and_surrogate_code_point():
    """The pattern spells the ranges out (both faces share it); it must cover every code point
    of categories Cc, Cf, Zl, Zp and Cs of this Python's Unicode database, and nothing assigned
    to another category."""
    forbidden = re.compile(f"[{FORBIDDEN}]")
    wanted = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    missing, extra = [], []
    for cp in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(cp))
        matched = forbidden.match(chr(cp)) is not None
        if category in wanted and not matched:
            missing.append(hex(cp))
        elif matched and category not in wanted and category != "Cn":  # Cn: unassigned in this version
            extra.append(hex(cp))
    assert (missing, extra) == ([], []), unicodedata.unidata_version
