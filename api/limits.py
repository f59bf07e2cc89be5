"""What a request body may be, per route: its media types, its size and how deeply its JSON nests.

Checked in front of every resource (Falcon middleware), so that no parser ever sees a body it
should not: a declared Content-Length over the route's limit is refused with 413 before a byte
is read; a chunked body is counted as it is read and refused as soon as it passes the limit; a
JSON body nested deeper than the limit is refused with 400 before msgspec, json or marshmallow
recurse into it (1,000 levels made them raise RecursionError: a 500). The body is read once,
in pieces, into at most `max_bytes` of memory, and handed on to the resource as a fresh stream.

A route that streams its body itself (the spool upload, up to 400 MB) declares `max_bytes=None`:
only its media type is checked here, and the resource bounds the stream.
"""
from __future__ import annotations

import io
import logging
import socket
import time
from dataclasses import dataclass

import falcon

from api.errors import InvalidInput

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
OCTETS = "application/octet-stream"
log = logging.getLogger("pageledger.api")
_READ_PIECE = 64 * 1024
_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Openers become "[" and closers "]", everything else goes: depth does not care which kind
# (a parser recurses into "[[{" before it finds a mismatch).
_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

@dataclass(frozen=True)
class BodyRule:
    """`media_types`: what the body may be (a charset parameter is allowed); `max_bytes`: its
    size, None when the resource bounds its own stream; `max_depth`: JSON nesting."""

    media_types: tuple[str, ...] = (JSON,)
    max_bytes: int | None = 1024 * 1024
    max_depth: int = 32


def _outside_strings(body: bytes) -> bytes:
    """The JSON text without its strings' contents. Escaped backslashes go first, then escaped
    quotes (what is left of a run of backslashes escapes the quote, as a parser reads it); the
    remaining quotes then open and close strings, so every other piece between them is one."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(body.split(b'"')[0::2])


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether the JSON text nests arrays/objects deeper than `max_depth`, without recursion and
    in C-speed passes: strings go, the rest becomes a string of "[" and "]", and innermost
    pairs "[]" are removed up to `max_depth` times (each pass takes exactly one level off the
    deepest branch). What is left of well-formed JSON is then too deep; what is left of
    malformed JSON is read only as far as a parser would recurse into it."""
    brackets = _outside_strings(body).translate(_BRACKETS_ONLY, _NOT_BRACKETS)
    peeled = 0
    while brackets and peeled < max_depth:
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets, peeled = shorter, peeled + 1
    depth = peeled
    for b in brackets:  # no "[]" left: "]" ends what a parser reads, "[" only goes deeper
        if b == 0x5D:
            return False
        depth += 1
        if depth > max_depth:
            return True
    return False

def _media_type(req: falcon.Request) -> str:
    return (req.content_type or "").split(";", 1)[0].strip().lower()


def _has_body(req: falcon.Request) -> bool:
    if req.content_length:
        return True
    return "chunked" in (req.get_header("Transfer-Encoding") or "").lower()


class RequestLimits:
    """Falcon middleware: each route's BodyRule (`rules` by URI template, else `default`),
    and a deadline for reading a body: a client that trickles it is cut off with 408 when
    `read_seconds` have passed since the request arrived."""

    def __init__(self, rules: dict[str, BodyRule], default: BodyRule, read_seconds: float) -> None:
        self.rules = rules
        self.default = default
        self.read_seconds = read_seconds

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        if resource is None or req.method not in _BODY_METHODS:
            return
        rule = self.rules.get(req.uri_template or "", self.default)
        if not _has_body(req):
            return
        media = _media_type(req)
        if media not in rule.media_types:
            raise falcon.HTTPUnsupportedMediaType(
                title="Unsupported media type",
                description=f"send {' or '.join(rule.media_types)}, not {media or 'no Content-Type'}")
        if rule.max_bytes is None:
            return
        if req.content_length is not None and req.content_length > rule.max_bytes:
            raise _too_large(rule.max_bytes)
        body = self._read(req, rule.max_bytes)
        if media == JSON and json_depth_exceeds(body, rule.max_depth):
            raise InvalidInput({"_body": [f"JSON nested deeper than {rule.max_depth} levels"]})
        # What the resource reads: the body as read here (falcon's bounded stream wraps wsgi.input).
        req.stream = req.env["wsgi.input"] = io.BytesIO(body)
        req.env["CONTENT_LENGTH"] = str(len(body))
        req._bounded_stream = None

    def _read(self, req: falcon.Request, limit: int) -> bytes:
        """The body, read in pieces into at most `limit` bytes, within the read deadline."""
        stream = req.stream
        remaining = req.content_length  # None: chunked, read to its end
        sock = req.env.get("gunicorn.socket")
        deadline = time.monotonic() + self.read_seconds
        parts: list[bytes] = []
        size = 0
        try:
            while remaining is None or remaining > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout
                if sock is not None:
                    sock.settimeout(left)
                want = _READ_PIECE if remaining is None else min(_READ_PIECE, remaining)
                try:
                    piece = stream.read(want)
                except (socket.timeout, TimeoutError):
                    raise
                except Exception as exc:  # noqa: BLE001 - a broken chunked body, a reset: the client's doing
                    log.info("request body of %s %s could not be read: %s: %s", req.method, req.path,
                             type(exc).__name__, exc)
                    raise falcon.HTTPBadRequest(title="Unreadable body", description="the body could not be read "
                                                "to its end (broken chunked encoding or a closed connection)") from None
                if not piece:
                    break
                size += len(piece)
                if size > limit:
                    raise _too_large(limit)
                parts.append(piece)
                if remaining is not None:
                    remaining -= len(piece)
        except (socket.timeout, TimeoutError):
            raise falcon.HTTPError(
                falcon.HTTP_408, title="Request timeout",
                description=f"the body did not arrive within {self.read_seconds:g}s") from None
        finally:
            if sock is not None:
                sock.settimeout(None)
        return b"".join(parts)


def _too_large(limit: int) -> falcon.HTTPContentTooLarge:
    return falcon.HTTPContentTooLarge(title="Request too large",
                                      description=f"this endpoint takes at most {limit} bytes")
