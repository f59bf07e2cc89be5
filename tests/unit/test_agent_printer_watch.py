"""The release service's printer watch: what it posts after each poll of CUPS (changes only,
everything once after a start, a failed post sent again with the time first seen), with a
CUPS and a server that answer what each test says."""
from __future__ import annotations

from agent.cups_release import CupsUnavailable, PrinterState
from agent.release_service import PrinterWatch
from agent.server import ServerRejectedJobs, ServerUnreachable


class Cups:
    def __init__(self):
        self.states: list[PrinterState] | Exception = []

    def printer_states(self):
        if isinstance(self.states, Exception):
            raise self.states
        return list(self.states)


class Server:
    def __init__(self):
        self.posts: list[list[dict]] = []
        self.fail: Exception | None = None

    def printer_states(self, printers):
        if self.fail is not None:
            raise self.fail
        self.posts.append(printers)
        return []


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


def ok(name, state="idle"):
    return PrinterState(name, state, ("none",), "", True)


def stopped(name, message="toner low", reasons=("paused",)):
    return PrinterState(name, "stopped", reasons, message, True)


def watch():
    cups, server, clock = Cups(), Server(), Clock()
    return PrinterWatch(server, cups, wall_clock=clock), cups, server, clock


def names(post):
    return [(p["printer"], p["state"], p["reasons"]) for p in post]


def test_the_first_poll_posts_every_printer_then_only_changes():
    w, cups, server, clock = watch()
    cups.states = [ok("a"), stopped("b")]
    assert w.poll() == 2
    assert names(server.posts[-1]) == [("a", "idle", []), ("b", "stopped", ["paused"])]
    cups.states = [ok("a", "processing"), stopped("b")]  # printing is no change; b still the same
    assert w.poll() == 0 and len(server.posts) == 1
    cups.states = [ok("a"), stopped("b", message="toner replaced soon")]  # a new message while in error
    assert w.poll() == 1 and names(server.posts[-1]) == [("b", "stopped", ["paused"])]
    assert server.posts[-1][0]["message"] == "toner replaced soon"
    cups.states = [PrinterState("a", "idle", ("media-empty-error",), "Load paper", True), ok("b")]
    assert w.poll() == 2
    assert names(server.posts[-1]) == [("a", "idle", ["media-empty-error"]), ("b", "idle", [])]


def test_a_post_that_failed_is_sent_again_with_the_time_it_was_first_seen():
    w, cups, server, clock = watch()
    cups.states = [ok("a")]
    w.poll()
    server.fail = ServerUnreachable("down")
    cups.states = [stopped("a")]
    first_seen = clock.now = clock.now + 30
    assert w.poll() == 0
    clock.now += 30
    server.fail = None
    assert w.poll() == 1
    assert server.posts[-1][0]["seen_at"].startswith("2027-01-15T08:")  # 1_800_000_030 s
    from datetime import datetime

    assert datetime.fromisoformat(server.posts[-1][0]["seen_at"]).timestamp() == first_seen
    assert w.poll() == 0  # posted: no more


def test_a_refused_post_is_not_sent_again_and_cups_down_posts_nothing():
    w, cups, server, clock = watch()
    cups.states = CupsUnavailable("no cupsd")
    assert w.poll() == 0 and server.posts == []
    cups.states = [stopped("a")]
    server.fail = ServerRejectedJobs("refused", {"printers.0.printer": ["not a printer name"]})
    assert w.poll() == 1
    server.fail = None
    assert w.poll() == 0 and server.posts == []


def test_a_printer_removed_while_in_error_has_its_error_ended():
    w, cups, server, clock = watch()
    cups.states = [stopped("a"), ok("b")]
    w.poll()
    cups.states = [ok("b")]
    assert w.poll() == 1
    assert server.posts[-1] == [{"printer": "a", "state": "unknown", "reasons": [], "message": "no longer in CUPS",
                                 "seen_at": server.posts[-1][0]["seen_at"]}]
    cups.states = []
    assert w.poll() == 0  # b was fine: nothing to end


def test_what_cannot_be_sent_as_it_is_is_cleaned_first():
    w, cups, server, clock = watch()
    cups.states = [PrinterState("a", "weird", ("paused", "bad reason", *[f"r{i}-report" for i in range(40)]),
                                "line\nbreak" + "x" * 2000, True)]
    w.poll()
    [sent] = server.posts[-1]
    assert sent["state"] == "unknown" and sent["reasons"][0] == "paused" and len(sent["reasons"]) == 32
    assert "bad reason" not in sent["reasons"] and len(sent["message"]) == 1000 and "\n" not in sent["message"]
