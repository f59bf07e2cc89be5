"""The agent's one HTTP/1.1 request (agent.http_exchange) against real sockets that answer as
servers and proxies do: Content-Length, chunked, to the close, 100 Continue first, and broken
or hostile answers, which must come back as errors, never as a half-read answer."""
import socket
import threading

import pytest

from agent import http_exchange
from agent.http_exchange import BadAnswer, exchange, split_url


class OneShotServer:
    """Accepts one connection, keeps the request it read, sends ``answer`` and closes."""

    def __init__(self, answer: bytes, hold_open: float = 0.0):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answer = answer
        self.hold_open = hold_open
        self.request = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(5)
            while b"\r\n\r\n" not in self.request:
                self.request += conn.recv(65536)
            head, _, body = self.request.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
            while length and len(body) < length[0]:
                body += conn.recv(65536)
            self.request = head + b"\r\n\r\n" + body
            conn.sendall(self.answer)
            if self.hold_open:
                threading.Event().wait(self.hold_open)
        self.listener.close()

    @property
    def url(self):
        return split_url(f"http://127.0.0.1:{self.port}/base")


def test_a_post_sends_its_length_host_and_close_and_reads_a_content_length_answer():
    server = OneShotServer(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                           b'{"ok": true}extra-bytes-ignored')
    status, body = exchange(server.url, "POST", "/base/Services/jobs", b'{"jobs": []}',
                            {"Authorization": "Bearer t"}, 3)
    server.thread.join(5)
    assert (status, body) == (201, b'{"ok": true')
    head, _, sent_body = server.request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /base/Services/jobs HTTP/1.1"
    assert {b"Host: 127.0.0.1:%d" % server.port, b"Connection: close", b"Content-Length: 12",
            b"Authorization: Bearer t"} <= set(lines)
    assert sent_body == b'{"jobs": []}'


def test_a_chunked_answer_after_a_100_continue_is_joined():
    server = OneShotServer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"4;ext=1\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert exchange(server.url, "GET", "/base/Services/policy", b"", {}, 3) == (200, b'{"a": 1}')


def test_an_answer_without_a_length_is_read_to_the_close():
    server = OneShotServer(b"HTTP/1.0 503 Service Unavailable\r\n\r\n{\"title\": \"down\"}")
    assert exchange(server.url, "GET", "/", b"", {}, 3) == (503, b'{"title": "down"}')


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",  # cut short
    b"SMTP ready\r\n\r\n",  # not HTTP
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",  # conflicting lengths
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",  # a coding it cannot read
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
    b"HTTP/1.1 200 OK\r\n bad header\r\n\r\n",  # folded/malformed header
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",  # over the answer limit
])
def test_a_broken_answer_is_an_error_not_a_result(answer):
    server = OneShotServer(answer)
    with pytest.raises(BadAnswer):
        exchange(server.url, "GET", "/", b"", {}, 3)


def test_a_server_that_never_finishes_its_answer_times_out_within_the_budget():
    import time

    server = OneShotServer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", hold_open=3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        exchange(server.url, "GET", "/", b"", {}, 0.5)
    assert time.monotonic() - started < 1.5


def test_an_unreachable_server_is_an_os_error():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(ConnectionRefusedError):
        exchange(split_url(f"http://127.0.0.1:{port}"), "GET", "/", b"", {}, 2)


@pytest.mark.parametrize("url, parts", [
    ("http://h", ("http", "h", None, "")),
    ("https://print.example:8443/pl", ("https", "print.example", 8443, "/pl")),
    ("http://[::1]:8080/x/y", ("http", "::1", 8080, "/x/y")),
    ("HTTP://h:1/", ("http", "h", 1, "/")),
])
def test_urls_split_as_the_server_url_is_written(url, parts):
    assert tuple(split_url(url)) == parts


@pytest.mark.parametrize("url", ["ftp://h", "http://", "http://u:p@h", "http://h:0", "http://h:99999", "http://h/?q",
                                 "http://h:8x", "http://[::1", "http://h /x", "h:80"])
def test_urls_it_cannot_use_are_refused(url):
    with pytest.raises(ValueError):
        split_url(url)


def test_the_host_header_brackets_an_ipv6_address():
    assert split_url("http://[::1]:8080").host_header == "[::1]:8080"
    assert http_exchange.Url("http", "h", None, "").host_header == "h"


def test_https_checks_the_certificate_and_its_host_name(tmp_path):
    """TLS with the default context: a certificate the client trusts (SSL_CERT_FILE) for the
    host asked is accepted; the same server under another name is refused."""
    import ssl
    import subprocess
    import sys
    from pathlib import Path

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                           "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
                           "-out", str(cert)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(5)
                    request = b""
                    while b"\r\n\r\n" not in request:
                        request += tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"offline\": \"x\"}")
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    root = Path(__file__).resolve().parents[2]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from agent.http_exchange import exchange, split_url\n"
            "try:\n    print(exchange(split_url(sys.argv[2]), 'GET', '/p', b'', {}, 5))\n"
            "except OSError as err:\n    print('refused', type(err).__name__)\n")
    env = {"SSL_CERT_FILE": str(cert), "PATH": "/usr/bin:/bin"}
    trusted = subprocess.run([sys.executable, "-I", "-c", code, str(root), f"https://localhost:{port}"],
                             capture_output=True, text=True, timeout=30, env=env)
    assert trusted.stdout.strip() == "(200, b'{\"offline\": \"x\"}')", trusted.stderr
    other_name = subprocess.run([sys.executable, "-I", "-c", code, str(root), f"https://127.0.0.1:{port}"],
                                capture_output=True, text=True, timeout=30, env=env)
    assert other_name.stdout.strip() == "refused SSLCertVerificationError", other_name.stderr
    thread.join(10)
