import pytest
from marshmallow import ValidationError

from api.errors import flatten
from commands.track_jobs import TrackJobsSchema
from tools.sample_jobs import sample_jobs


def test_sample_jobs_are_valid_reports():
    batch = TrackJobsSchema().load({"jobs": list(sample_jobs(50))})
    assert len(batch["jobs"]) == 50
    assert batch["jobs"][0].submitted_at.tzinfo is not None


def test_every_bad_field_is_named():
    bad = dict(next(sample_jobs(1)))
    bad.update(pages=-1, copies=0, pdl="exe", submitted_at="2026-01-01T00:00:00")  # naive time
    good = next(sample_jobs(1, seed=2))
    with pytest.raises(ValidationError) as err:
        TrackJobsSchema().load({"jobs": [good, bad]})
    named = flatten(err.value.messages)
    assert set(named) == {"jobs.1.pages", "jobs.1.copies", "jobs.1.pdl", "jobs.1.submitted_at"}


def test_colour_pages_cannot_exceed_pages_and_strings_are_not_numbers():
    job = dict(next(sample_jobs(1)), pages=2, colour_pages=3)
    with pytest.raises(ValidationError) as err:
        TrackJobsSchema().load({"jobs": [job]})
    assert "colour_pages" in err.value.messages["jobs"][0]
    with pytest.raises(ValidationError):
        TrackJobsSchema().load({"jobs": [dict(job, colour_pages=0, pages="2")]})


def test_empty_and_missing_batches_are_refused():
    for body in ({}, {"jobs": []}, {"jobs": "x"}):
        with pytest.raises(ValidationError):
            TrackJobsSchema().load(body)
