"""The release service names the release queues of its own cupsd when it asks for orders, so that
each print server's service is handed only the orders it can print (fakes for CUPS and the server)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from agent.cups_release import CupsUnavailable
from agent.release_service import Journal, ReleaseClient, ReleaseService, _query_groups


class FakeCups:
    server_name = "printsrv-2"

    def __init__(self, queues: list[str]) -> None:
        self.queues = queues
        self.asked = 0

    def release_queues(self) -> list[str]:
        self.asked += 1
        if self.queues is None:
            raise CupsUnavailable("cupsd is not running")
        return list(self.queues)


class FakeServer:
    def __init__(self) -> None:
        self.asked: list[list[str] | None] = []

    def orders(self, wait: float, queues: list[str] | None = None) -> list[dict]:
        self.asked.append(queues)
        return []


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def service(tmp_path: Path, cups: FakeCups, clock: Clock) -> tuple[ReleaseService, FakeServer]:
    server = FakeServer()
    return ReleaseService(server, cups, Journal(tmp_path / "journal.sqlite3"), tmp_path, clock=clock), server


def test_the_service_asks_only_for_the_orders_of_its_own_release_queues(tmp_path):
    cups, clock = FakeCups(["annex-release", "lobby-release"]), Clock()
    rs, server = service(tmp_path, cups, clock)
    rs.take_orders(0)
    rs.take_orders(0)
    assert server.asked == [["annex-release", "lobby-release"]] * 2
    assert cups.asked == 1  # CUPS is asked again only after a while
    cups.queues = ["lobby-release"]  # the admin removed a release queue
    clock.now += 11
    rs.take_orders(0)
    assert server.asked[-1] == ["lobby-release"] and cups.asked == 2


def test_a_service_without_release_queues_takes_no_orders_and_looks_again_at_each_turn(tmp_path):
    cups, clock = FakeCups([]), Clock()
    rs, server = service(tmp_path, cups, clock)
    assert rs.take_orders(0) == 0 and rs.take_orders(0) == 0
    assert server.asked == [] and cups.asked == 2  # never every order: they are other print servers'
    cups.queues = None  # cupsd down: still none known, still no orders
    assert rs.take_orders(0) == 0 and server.asked == []
    cups.queues = ["vault-release"]
    rs.take_orders(0)
    assert server.asked == [["vault-release"]]


def test_many_queues_are_asked_for_in_groups_that_fit_a_request_line():
    queues = [f"{'q' * 100}{i}-release" for i in range(100)]
    groups = _query_groups(queues)
    assert len(groups) > 1 and all(len(g) <= 3000 and g.count("&queue=") <= 64 for g in groups)
    assert [q for g in groups for q in parse_qs(g.lstrip("&"))["queue"]] == queues
    assert _query_groups(["a b-release"]) == ["&queue=a%20b-release"]


def test_the_client_long_polls_with_the_first_group_only(monkeypatch):
    client = ReleaseClient("http://pageledger.test", "token", timeout=5)
    paths = []

    def request(method, path, body=None, headers=None, timeout=None):
        paths.append(path)
        return 200, {"orders": []}

    monkeypatch.setattr(client, "_request", request)
    client.orders(1, [f"p{i}-release" for i in range(70)])
    waits = [parse_qs(urlsplit(p).query)["wait"] for p in paths]
    assert waits == [["1"], ["0"]]
    assert sum(len(parse_qs(urlsplit(p).query)["queue"]) for p in paths) == 70
