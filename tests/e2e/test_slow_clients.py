"""200 slow clients (heads trickled, bodies trickled, idle connections) against the real server:
/healthz, a login and a 500-job batch still answer within a second, again and again."""
from __future__ import annotations

import json
import random
import selectors
import socket
import statistics
import threading
import time

import requests

from tests.e2e.test_hostile_requests import _worker_memory_kb
from tools.sample_jobs import sample_jobs

SLOW_CLIENTS = 200


class SlowClients:
    """Keeps `n` hostile connections open from one thread: a third trickle a request head a byte
    at a time, a third send a login head with `Content-Length: 100` and trickle its body, a third
    connect and say nothing. One the server drops is opened again."""

    def __init__(self, port: int, n: int) -> None:
        self.port, self.n = port, n
        self.stop = threading.Event()
        self.reopened = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, kind: int):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        s.setblocking(False)
        if kind == 0:
            data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 2000 + b"\r\n\r\n"
        elif kind == 1:
            s.send(b"POST /Authentication/Login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 100\r\n\r\n")
            data = b"{" + b" " * 2000
        else:
            data = b""
        return [s, kind, data]

    def _run(self) -> None:
        conns = [self._open(i % 3) for i in range(self.n)]
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            for c in conns:
                s, kind, data = c
                try:
                    if data:
                        s.send(data[:1])
                        c[2] = data[1:]
                    if s.recv(4096) == b"":
                        raise ConnectionError
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    c[:] = self._open(kind)
                    self.reopened += 1
            self.stop.wait(0.2)
        for s, _, _ in conns:
            s.close()


def _timed(fn) -> tuple[float, int]:
    started = time.monotonic()
    status = fn()
    return time.monotonic() - started, status


def test_the_server_answers_within_a_second_while_200_slow_clients_hang_on(live_server):
    url, agent = live_server.url, live_server.headers(live_server.agent_token)
    jobs = list(sample_jobs(500, key_prefix=f"slow{random.random()}"))
    # A real account, so every login below is a whole password check (argon2), not a throttled refusal.
    setup = requests.post(url + "/Setup/NetworkSetup", timeout=30, json={
        "setup_code": live_server.setup_code, "network_type": "local", "licence_mode": "trial",
        "admin_login": "root", "admin_password": "root-pw-123"})
    assert setup.status_code == 201, setup.text

    def healthz() -> int:
        return requests.get(url + "/healthz", timeout=5).status_code

    def login() -> int:
        return requests.post(url + "/Authentication/Login", json={"login": "root", "password": "root-pw-123"},
                             timeout=5).status_code

    batch_no = iter(range(100))

    def batch() -> int:
        n = next(batch_no)
        body = {"jobs": [dict(j, job_key=f"{j['job_key']}/{n}") for j in jobs]}
        return requests.post(url + "/Services/jobs", json=body, headers=agent, timeout=5).status_code

    quiet: dict[str, list[float]] = {"healthz": [], "login": [], "batch": []}
    for _ in range(3):
        for name, fn in (("healthz", healthz), ("login", login), ("batch", batch)):
            quiet[name].append(_timed(fn)[0])
    memory_before = _worker_memory_kb(live_server)
    slow = SlowClients(live_server.port, SLOW_CLIENTS)
    slow.thread.start()
    try:
        time.sleep(2)  # every slow connection is open and has started trickling
        seen: dict[str, list[float]] = {"healthz": [], "login": [], "batch": []}
        statuses: dict[str, set[int]] = {k: set() for k in seen}
        end = time.monotonic() + 12
        while time.monotonic() < end:
            for name, fn in (("healthz", healthz), ("login", login), ("batch", batch)):
                took, status = _timed(fn)
                seen[name].append(took)
                statuses[name].add(status)
            time.sleep(0.3)
        memory_during = _worker_memory_kb(live_server)
    finally:
        slow.stop.set()
        slow.thread.join(10)
    for pid, (hwm, rss) in memory_during.items():
        print(f"worker {pid} under {SLOW_CLIENTS} slow clients: VmHWM {memory_before.get(pid, (0, 0))[0]} -> {hwm} kB, "
              f"VmRSS {rss} kB")
    for name, times in seen.items():
        p50 = statistics.median(times)
        print(f"{name}: n={len(times)} p50={p50 * 1000:.0f}ms max={max(times) * 1000:.0f}ms")
        print(f"{name} without slow clients: p50={statistics.median(quiet[name]) * 1000:.0f}ms")
    print(f"slow connections reopened by the server: {slow.reopened}")
    assert statuses == {"healthz": {200}, "login": {200}, "batch": {200}}, statuses
    assert memory_during and all(hwm < 400_000 for hwm, _ in memory_during.values()), memory_during
    for name, times in seen.items():
        assert len(times) >= 5 and max(times) < 1.0, (name, times)


def _trickle(port: int, head: bytes, body: bytes, seconds: float) -> bytes:
    """Send `head` at once, then `body` a byte every 0.1 s for at most `seconds`; the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds + 5) as s:
        s.sendall(head)
        answer = b""
        s.setblocking(False)
        end = time.monotonic() + seconds
        for byte in body:
            if time.monotonic() > end:
                break
            try:
                s.send(bytes([byte]))
                answer += s.recv(4096)
            except BlockingIOError:
                pass
            except OSError:
                break
            if answer:
                break
            time.sleep(0.1)
        s.setblocking(True)
        try:
            while b"\r\n\r\n" not in answer or len(answer) < _answer_length(answer):
                piece = s.recv(4096)
                if not piece:
                    break
                answer += piece
        except OSError:
            pass
        return answer


def _answer_length(answer: bytes) -> int:
    """Bytes of the whole answer (head and body) once its head is in: the body is read too."""
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(head) + 4 + int(value)
    return 0


def test_a_client_that_does_not_finish_its_request_in_time_is_answered_408(tmp_path, start_server):
    from tests.conftest import make_live_server

    server = start_server(make_live_server(tmp_path, PAGELEDGER_REQUEST_READ_SECONDS="1",
                                           PAGELEDGER_REQUEST_BUFFER_BYTES="256", PAGELEDGER_BODY_READ_SECONDS="1"))
    login = b"POST /Authentication/Login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    # The head trickled: the worker's event loop gives up on it.
    started = time.monotonic()
    answer = _trickle(server.port, b"", login + b"Content-Length: 100\r\n\r\n", 6)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < 4
    # A body larger than the buffer streams in a thread, which stops waiting for it after 1 s.
    started = time.monotonic()
    answer = _trickle(server.port, login + b"Content-Length: 1000\r\n\r\n", b"{" + b" " * 999, 6)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"did not arrive within 1s" in answer or time.monotonic() - started < 4
