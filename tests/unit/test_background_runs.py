"""One background run at a time, its state kept for a page to poll (adapters.background_runs)."""
import logging

from adapters.background_runs import OneRunAtATime
from adapters.report_runs import ReportRunStore


def test_one_run_at_a_time_reports_progress_then_its_result_or_the_reason_it_failed(tmp_path):
    submitted: list[str] = []
    seen: list[dict] = []

    def work(report):
        report(0.5, "half way")
        seen.append(dict(runs.load(submitted[0])))
        return {"answer": 42}

    runs = OneRunAtATime("demo", ReportRunStore(tmp_path / "runs"), submitted.append, work, logging.getLogger("t"))
    first = runs.start(by="root")
    assert runs.start(by="someone else") == first and submitted == [first]  # one at a time
    assert runs.load(first)["state"] == "queued"
    runs.execute(first)
    assert seen[0]["state"] == "running" and seen[0]["progress"] == 0.5 and seen[0]["phase"] == "half way"
    done = runs.load(first)
    assert (done["state"], done["progress"], done["result"]) == ("done", 1.0, {"answer": 42})
    runs.execute(first)  # not queued any more: nothing runs twice
    assert len(seen) == 1

    failing = OneRunAtATime("demo", ReportRunStore(tmp_path / "runs2"), lambda run_id: None,
                            lambda report: 1 / 0, logging.getLogger("t"))
    run_id = failing.start(by="root")
    failing.execute(run_id)
    state = failing.load(run_id)
    assert state["state"] == "failed" and state["error"].startswith("ZeroDivisionError")
    assert OneRunAtATime("other", ReportRunStore(tmp_path / "runs2"), lambda r: None, lambda r: {},
                         logging.getLogger("t")).load(run_id) is None  # another kind's run is not this one's
