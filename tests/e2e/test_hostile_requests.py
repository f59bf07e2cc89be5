"""Requests too big, too deep or of the wrong kind, against the real server (`pageledger up`):
each is refused with a 4xx naming why, before anything is parsed, and a worker's memory stays
flat while oversized bodies arrive."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from tests.conftest import descendants
from tools.sample_jobs import sample_jobs

DEEP = ("[" * 1000 + "]" * 1000).encode()
DEEP_OBJECT = ('{"a":' * 1000 + "1" + "}" * 1000).encode()


def _post(server, path, body, content_type="application/json", token=None):
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers.update(server.headers(token))
    return requests.post(server.url + path, data=body, headers=headers, timeout=30)


@pytest.mark.parametrize("path,token", [("/Services/jobs", "agent"), ("/Authentication/Login", None),
                                        ("/Setup/NetworkSetup", None), ("/api/v1/licence/settings", "admin")])
def test_json_nested_1000_deep_is_refused_with_400(live_server, path, token):
    tok = {"agent": live_server.agent_token, "admin": live_server.admin_token, None: None}[token]
    for body in (DEEP, DEEP_OBJECT, b'{"jobs":' + DEEP + b"}"):
        if path == "/api/v1/licence/settings":
            r = requests.put(live_server.url + path, data=body, timeout=30,
                             headers={"Content-Type": "application/json", **live_server.headers(tok)})
        else:
            r = _post(live_server, path, body, token=tok)
        assert r.status_code == 400, (path, r.status_code, r.text[:300])
        assert "nested deeper than 32" in r.json()["errors"]["_body"][0]


def test_moderate_nesting_reaches_the_resource(live_server):
    # 20 levels is within the limit: the batch schema, not the guard, refuses it.
    r = _post(live_server, "/Services/jobs", b'{"jobs":' + b"[" * 20 + b"]" * 20 + b"}", token=live_server.agent_token)
    assert r.status_code == 400 and "_body" not in r.json().get("errors", {}), r.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_a_batch_that_is_not_json_is_refused_with_415(live_server, content_type):
    body = json.dumps({"jobs": list(sample_jobs(1))}).encode()
    r = _post(live_server, "/Services/jobs", body, content_type=content_type, token=live_server.agent_token)
    assert r.status_code == 415, (content_type, r.status_code, r.text[:200])
    assert "application/json" in r.json()["description"]


def test_json_with_a_charset_and_login_forms_are_taken(live_server):
    body = json.dumps({"jobs": list(sample_jobs(1, key_prefix="charset"))}).encode()
    r = _post(live_server, "/Services/jobs", body, "application/json; charset=utf-8", live_server.agent_token)
    assert r.status_code == 200, r.text
    r = _post(live_server, "/Authentication/Login", json.dumps({"login": "nobody", "password": "x"}).encode())
    assert r.status_code == 401, r.text
    r = _post(live_server, "/Authentication/Login", b"login=nobody&password=x", "application/x-www-form-urlencoded")
    assert r.status_code != 415, r.text  # the form's own CSRF check answers
    r = _post(live_server, "/Authentication/Login", b"login=nobody", "text/plain")
    assert r.status_code == 415
    r = requests.put(live_server.url + "/Services/jobs/00000000-0000-0000-0000-000000000000/spool", data=b"x",
                     headers={"Content-Type": "text/plain", **live_server.headers(live_server.agent_token)}, timeout=10)
    assert r.status_code == 415


def _raw(server, head: bytes, body: bytes = b"", timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(head + body)
        s.shutdown(socket.SHUT_WR) if not body else None
        data = b""
        while b"\r\n\r\n" not in data:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
        return data


def test_a_declared_oversized_body_is_refused_with_413_before_it_is_sent(live_server):
    head = (f"POST /Services/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {live_server.agent_token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n").encode()
    started = time.monotonic()
    answer = _raw(live_server, head)  # no body at all: the answer must not wait for it
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 3
    login = (b"POST /Authentication/Login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 2000000\r\n\r\n")
    assert _raw(live_server, login).startswith(b"HTTP/1.1 413")


def test_a_chunked_body_is_counted_as_it_is_read(live_server):
    def chunks():
        yield b'{"jobs":['
        piece = json.dumps(next(sample_jobs(1))).encode() + b","
        for _ in range(9 * 1024 * 1024 // len(piece) + 1):
            yield piece
        yield b"1]}"

    r = requests.post(live_server.url + "/Services/jobs", data=chunks(), timeout=30,
                      headers={"Content-Type": "application/json", **live_server.headers(live_server.agent_token)})
    assert r.status_code == 413, r.text[:200]
    assert "at most 8388608 bytes" in r.json()["description"]


def _worker_memory_kb(server) -> dict[int, tuple[int, int]]:
    """(VmHWM, VmRSS) in kB of each gunicorn worker (the master's children but the runner)."""
    found = {}
    for pid in descendants(server.proc.pid):
        try:
            status = open(f"/proc/{pid}/status").read()
            cmdline = open(f"/proc/{pid}/cmdline").read()
        except OSError:
            continue
        if "projection_process_main" in cmdline:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        found[pid] = (int(fields["VmHWM"].split()[0]), int(fields["VmRSS"].split()[0]))
    return found


def test_worker_memory_stays_flat_under_oversized_batches(live_server):
    """The reproducer: four parallel 44 MB batches of 400,000 jobs made each worker grow from
    ~95 MB to 938 MB. Now each is refused while it arrives; a worker's peak grows by little."""
    job = json.dumps(next(sample_jobs(1))).encode()
    body = b'{"jobs":[' + b",".join([job] * (44 * 1024 * 1024 // (len(job) + 1))) + b"]}"
    requests.get(live_server.url + "/healthz", timeout=5)
    before = _worker_memory_kb(live_server)
    assert before
    answers: list[object] = []

    def send(chunked: bool) -> None:
        data = (body[i:i + 1 << 20] for i in range(0, len(body), 1 << 20)) if chunked else body
        try:
            r = requests.post(live_server.url + "/Services/jobs", data=data, timeout=60,
                              headers={"Content-Type": "application/json",
                                       **live_server.headers(live_server.agent_token)})
            answers.append(r.status_code)
        except requests.ConnectionError as exc:  # the server may close before it is all sent
            answers.append(type(exc).__name__)

    senders = [threading.Thread(target=send, args=(i % 2 == 1,)) for i in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(90)
    after = _worker_memory_kb(live_server)
    print(f"answers: {answers}")
    for pid, (hwm, rss) in after.items():
        if pid in before:
            print(f"worker {pid}: VmHWM {before[pid][0]} -> {hwm} kB, VmRSS {before[pid][1]} -> {rss} kB")
    assert set(answers) <= {413, "ConnectionError"} and 413 in answers, answers
    for pid, (hwm, rss) in after.items():
        if pid in before:
            grown = hwm - before[pid][0]
            assert grown < 40 * 1024, f"worker {pid} peak grew by {grown} kB"
