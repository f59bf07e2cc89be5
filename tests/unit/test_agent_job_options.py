import pytest

from agent.job_options import BadJobArguments, CupsJob, parse_cups_options


def test_options_are_parsed_as_cups_parse_options_does():
    options = parse_cups_options(
        "job-uuid=urn:uuid:1234 sides=two-sided-long-edge number-up=2 page-ranges=2-3 "
        "document-name-supplied='Quarterly report.pdf' media=iso_a4_210x297mm collate noJCLBanner "
        'title="a \\"quoted\\" title" finishings-col={finishing-template=staple}')
    assert options["job-uuid"] == "urn:uuid:1234"
    assert options["sides"] == "two-sided-long-edge"
    assert options["number-up"] == "2"
    assert options["document-name-supplied"] == "Quarterly report.pdf"
    assert options["collate"] == "true" and options["jclbanner"] == "false"
    assert options["title"] == 'a "quoted" title'
    assert options["finishings-col"] == "{finishing-template=staple}"


def test_job_from_argv_with_and_without_file():
    job = CupsJob.from_argv(["42", "alice", "Report", "3", "sides=two-sided-short-edge number-up=4 "
                             "print-color-mode=monochrome media=na_letter_8.5x11in release-code=1234"])
    assert (job.job_id, job.user, job.title, job.copies, job.file) == (42, "alice", "Report", 3, None)
    assert job.duplex is True and job.number_up == 4 and job.monochrome and job.paper == "Letter"
    assert job.release_code == "1234"
    raw = CupsJob.from_argv(["7", "bob", "t", "1", "", "/var/spool/cups/d00007-001"])
    assert raw.file == "/var/spool/cups/d00007-001" and raw.duplex is None and raw.number_up == 1


def test_one_sided_is_not_duplex():
    assert CupsJob.from_argv(["1", "u", "t", "1", "sides=one-sided"]).duplex is False


@pytest.mark.parametrize("argv", [
    ["1", "u", "t", "1"],
    ["x", "u", "t", "1", ""],
    ["1", "u", "t", "0", ""],
    ["1", "u", "t", "two", ""],
    ["1", "u", "t", "1", "", "f", "extra"],
])
def test_bad_argv_is_refused_with_a_reason(argv):
    with pytest.raises(BadJobArguments):
        CupsJob.from_argv(argv)


def test_job_key_uses_the_job_uuid_or_a_title_hash_and_fits_255_chars():
    with_uuid = CupsJob.from_argv(["42", "alice", "Report", "1", "job-uuid=urn:uuid:abc"])
    assert with_uuid.job_key("printsrv1") == "printsrv1/42/urn:uuid:abc"
    without = CupsJob.from_argv(["42", "alice", "Report", "1", ""])
    key = without.job_key("printsrv1")
    assert key.startswith("printsrv1/42/t") and key == without.job_key("printsrv1")
    assert key != CupsJob.from_argv(["42", "alice", "Other", "1", ""]).job_key("printsrv1")
    long_job = CupsJob.from_argv(["42", "alice", "Report", "1", "job-uuid=" + "x" * 300])
    assert len(long_job.job_key("h")) <= 255


def test_bad_number_up_is_refused():
    with pytest.raises(BadJobArguments):
        CupsJob.from_argv(["1", "u", "t", "1", "number-up=zero"]).number_up


def test_creation_time_comes_from_cupsd_when_it_says():
    job = CupsJob.from_argv(["1", "u", "t", "1", "time-at-creation=1795597129 date-time-at-creation="])
    assert job.created_at == "2026-11-25T08:58:49+00:00"
    assert CupsJob.from_argv(["1", "u", "t", "1", ""]).created_at is None


def test_the_release_option_counts_only_on_a_release_queue():
    from agent.secure_queues import is_release_job

    assert is_release_job({"pageledger-job": "abc"}, "office-release") == "abc"
    assert is_release_job({"pageledger-job": "abc"}, "Office-RELEASE") == "abc"
    assert is_release_job({"pageledger-job": "abc"}, "office") == ""  # a user's lp -o on a wrapped queue
    assert is_release_job({"pageledger-job": "abc"}, "-release") == ""
    assert is_release_job({"pageledger-job": "x" * 65}, "office-release") == ""
    assert is_release_job({}, "office-release") == ""
