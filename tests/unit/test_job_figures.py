"""Which figures of a job a re-post must repeat, and how a conflict reaches the admin's log."""
import dataclasses
import json
import logging

from commands.job_reports import JobReport
from commands.jobs import PERSONAL_FIGURES, SENT_FIGURES
from domain.jobs import PrintJob
from pageledger.logs import JsonFormatter

ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic"}
COMPUTED = {"sheets", "cost", "schedule", "person"}  # the server's own figures (person: whose key seals the job)
MIGRATED = {"legacy_id", "billing_code"}  # only jobs replayed from a legacy database have them (tools/pa6_migrate)


def facts(event_class) -> set[str]:
    return {f.name for f in dataclasses.fields(event_class)} - ENVELOPE


def test_every_stored_fact_of_a_job_is_a_figure_sent_or_one_the_server_computes():
    # A field appended to the events one day must be placed on one side or the other.
    assert set(SENT_FIGURES) | COMPUTED | MIGRATED == facts(PrintJob.Tracked)
    assert set(SENT_FIGURES) | COMPUTED | {"reason"} == facts(PrintJob.Denied)
    assert set(SENT_FIGURES) <= set(JobReport.__struct_fields__)
    assert PERSONAL_FIGURES <= set(SENT_FIGURES)


def test_a_log_calls_extra_fields_become_keys_of_its_json_line():
    record = logging.makeLogRecord({"name": "pageledger.jobs", "levelno": logging.WARNING, "levelname": "WARNING",
                                    "msg": "job %s re-posted", "args": ("k/1",), "job_key": "k/1",
                                    "fields": ["pages"]})
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["message"], line["job_key"], line["fields"]) == ("warning", "job k/1 re-posted",
                                                                                 "k/1", ["pages"])
    plain = json.loads(JsonFormatter().format(logging.makeLogRecord({"msg": "started"})))
    assert set(plain) == {"time", "level", "logger", "message"}
