"""One HTTP/1.1 request and its answer, over a plain socket: the agent's whole need of HTTP.

A backend is a new process per print job. ``http.client`` imports ``email.parser`` (and
``ssl``, ``urllib``...), which cost a job more than the request itself (issue 19), so a job's
request is sent here: ``Content-Length`` always for a body, ``Connection: close``, and the
answer read as RFC 9112 frames it (``Content-Length``, ``Transfer-Encoding: chunked`` or to
the close; 1xx interim answers skipped). TLS (``ssl``, with the default context: certificates
and host name checked as ``http.client`` does) is imported only for an https URL. Everything
the server sends is bounded: a header block of 64 KiB, an answer of 16 MiB.

The C ``_socket`` module is used for plain http: ``socket.py`` wraps the same objects but its
import (``selectors``, the enum conversions) costs every job ~2 ms.
"""
from __future__ import annotations

import _socket
import time
from collections import namedtuple

MAX_HEAD = 64 << 10
MAX_BODY = 16 << 20
_RECV = 65536


class BadAnswer(OSError):
    """The server's answer is not well-formed HTTP/1.1 (or is too large, or cut short)."""


class Url(namedtuple("Url", "scheme hostname port path")):
    """An http(s) URL's parts; ``hostname`` without brackets, ``port`` None when not given."""

    __slots__ = ()

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return host if self.port is None else f"{host}:{self.port}"


def split_url(url: str) -> Url:
    """``http(s)://host[:port][/path]`` (user info, query and fragment are refused)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL")
    authority, slash, path = rest.partition("/")
    if "@" in authority or "?" in rest or "#" in rest or any(c <= " " for c in url):
        raise ValueError(f"{url!r}: user info, query, fragment or spaces are not allowed")
    if authority.startswith("["):
        host, bracket, port_text = authority[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ValueError(f"{url!r}: bad IPv6 host")
        port_text = port_text[1:]
    else:
        host, _, port_text = authority.partition(":")
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{url!r}: bad port {port_text!r}")
        port = int(port_text)
    if not host:
        raise ValueError(f"{url!r} has no host")
    return Url(scheme, host, port, slash + path)


def _connect(url: Url, deadline: float):
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.scheme == "https":
        import socket  # TLS wraps a socket.socket: only an https job pays for socket.py and ssl
        import ssl

        plain = socket.create_connection((url.hostname, port), timeout=max(0.001, deadline - time.monotonic()))
        try:
            plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return ssl.create_default_context().wrap_socket(plain, server_hostname=url.hostname)
        except BaseException:
            plain.close()
            raise
    last: OSError | None = None
    # An ASCII host name is given as bytes: as str, getaddrinfo encodes it with the idna codec,
    # whose import (encodings.idna, stringprep) costs a job ~3 ms.
    host = url.hostname.encode("ascii") if url.hostname.isascii() else url.hostname
    for family, kind, proto, _name, address in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.connect(address)
        except OSError as err:
            sock.close()
            last = err
            continue
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        return sock
    raise last or OSError(f"{url.hostname}: no address")


class _Reader:
    """Reads the answer from the socket, each wait bounded by what is left of the deadline."""

    def __init__(self, sock, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.closed = False

    def fill(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(_RECV)
        except OSError as err:
            if type(err).__name__ != "SSLEOFError":  # a TLS peer that closed without close_notify
                raise
            data = b""
        if not data:
            self.closed = True
            return False
        self.buffer += data
        return True

    def line(self, limit: int) -> bytes:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > limit:
                raise BadAnswer("answer line too long")
            if not self.fill():
                raise BadAnswer("connection closed in the answer's head")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self.fill():
                raise BadAnswer("connection closed before the whole answer arrived")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def to_close(self) -> bytes:
        while self.fill():
            if len(self.buffer) > MAX_BODY:
                raise BadAnswer("answer too large")
        data, self.buffer = self.buffer, b""
        return data


def _head(reader: _Reader) -> tuple[int, dict[str, str]]:
    """The status and the headers (names lower-case; repeated ones joined with ', ')."""
    status_line = reader.line(MAX_HEAD).decode("latin-1")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit() or rest[3:4] not in ("", " "):
        raise BadAnswer(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    size = len(status_line)
    while True:
        line = reader.line(MAX_HEAD).decode("latin-1")
        size += len(line) + 2
        if size > MAX_HEAD:
            raise BadAnswer("answer head too large")
        if not line:
            return int(code), headers
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadAnswer(f"malformed header line {line[:80]!r}")
        name = name.lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value


def _chunked(reader: _Reader) -> bytes:
    body = bytearray()
    while True:
        size_text = reader.line(1024).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadAnswer(f"bad chunk size {size_text[:20]!r}") from None
        if size < 0 or len(body) + size > MAX_BODY:
            raise BadAnswer("answer too large")
        if size == 0:
            while reader.line(MAX_HEAD):  # trailer fields, unused
                pass
            return bytes(body)
        body += reader.exactly(size)
        if reader.exactly(2) != b"\r\n":
            raise BadAnswer("chunk not followed by CRLF")


def _body(reader: _Reader, method: str, status: int, headers: dict[str, str]) -> bytes:
    if method == "HEAD" or status in (204, 304):
        return b""
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.lower() != "chunked":
            raise BadAnswer(f"unsupported Transfer-Encoding {coding!r}")
        return _chunked(reader)
    length = headers.get("content-length")
    if length is not None:
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise BadAnswer(f"bad Content-Length {length!r}")
        size = int(values.pop())
        if size > MAX_BODY:
            raise BadAnswer("answer too large")
        return reader.exactly(size)
    return reader.to_close()


def exchange(url: Url, method: str, target: str, body: bytes, headers: dict[str, str],
             timeout: float) -> tuple[int, bytes]:
    """Send one request and return (status, body); ``timeout`` bounds the whole exchange.
    Raises OSError (TimeoutError, ConnectionError, BadAnswer...) when there is no good answer."""
    deadline = time.monotonic() + timeout
    head = [f"{method} {target or '/'} HTTP/1.1", f"Host: {url.host_header}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    sock = _connect(url, deadline)
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        sock.sendall(request)
        reader = _Reader(sock, deadline)
        status, answer_headers = _head(reader)
        while 100 <= status < 200:  # interim answers (100 Continue...): the real one follows
            status, answer_headers = _head(reader)
        return status, _body(reader, method, status, answer_headers)
    finally:
        sock.close()
