import subprocess
import sys

from agent.outbox import Outbox
from agent.policy_cache import CachedPolicy


def job(key: str) -> dict:
    return {"job_key": key, "user": "alice", "printer": "q", "pages": 1, "copies": 1}


def test_jobs_survive_reopening_and_are_kept_once_per_key(tmp_path):
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        outbox.add(job("h/1/a"))
        outbox.add(job("h/1/a"))
        outbox.add(job("h/2/b"))
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        assert outbox.count() == 2
        assert [j["job_key"] for j in outbox.pending(10)] == ["h/1/a", "h/2/b"]
        assert [j["job_key"] for j in outbox.pending(10, exclude=("h/1/a",))] == ["h/2/b"]
        outbox.remove(["h/1/a"])
        assert outbox.count() == 1


def test_a_process_killed_after_adding_leaves_the_job_in_the_outbox(tmp_path):
    script = ("import os, sys; sys.path.insert(0, '.'); from agent.outbox import Outbox; "
              f"o = Outbox({str(tmp_path / 'o.sqlite3')!r}); o.add({{'job_key': 'h/9/z'}}); os._exit(9)")
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        assert [j["job_key"] for j in outbox.pending(5)] == ["h/9/z"]


def test_rejected_jobs_leave_the_queue_but_are_kept_with_the_reason(tmp_path):
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        outbox.add(job("h/1/a"))
        outbox.reject(job("h/1/a"), "HTTP 400 pages")
        assert outbox.count() == 0
        assert outbox.rejected() == [("h/1/a", "HTTP 400 pages")]


def test_second_flusher_does_not_get_the_lock(tmp_path):
    with Outbox(tmp_path / "o.sqlite3") as first, Outbox(tmp_path / "o.sqlite3") as second:
        with first.flush_lock() as got_first:
            # flock is per open file description: a second open in the same process conflicts too.
            with second.flush_lock() as got_second:
                assert got_first is True and got_second is False


def test_offline_action_follows_ignore_disconnected_until_connected_then_the_server():
    never = CachedPolicy()
    assert never.offline_action(ignore_disconnected=True) == "print"
    assert never.offline_action(ignore_disconnected=False) == "refuse"
    connected = CachedPolicy(connected_at=1.0, offline="print", fetched_at=1.0)
    assert connected.offline_action(ignore_disconnected=False) == "print"
    strict = CachedPolicy(connected_at=1.0, offline="refuse", fetched_at=1.0)
    assert strict.offline_action(ignore_disconnected=True) == "refuse"


def test_a_conflict_leaves_the_outbox_with_a_warning_and_the_other_answers_quietly(tmp_path):
    from agent.server import JobResult

    class Client:
        def post_jobs(self, jobs):
            return [JobResult("h/1/a", "id-1", "conflict", "print", 1, "0.1000", "already recorded with other "
                              "figures (pages): nothing recorded for this post", ("pages",)),
                    JobResult("h/2/b", "id-2", "tracked", "print", 1, "0.1000", "")]

    warnings = []
    with Outbox(tmp_path / "o.sqlite3", warn=warnings.append) as outbox:
        outbox.add(job("h/1/a"))
        outbox.add(job("h/2/b"))
        report = outbox.flush(Client())
        assert (report.sent, report.rejected, report.remaining) == (2, 0, 0)
        assert outbox.rejected() == []
    [line] = warnings
    assert line.startswith("PageLedger: the server already recorded job h/1/a with other figures (pages)")
    assert "not re-posted" in line
