"""HTTP client of the server's ``/Services`` API (docs/services-api.md), on the standard library.

Every call has a short timeout: a print job must not wait long on an unreachable server.
Failures come back as three kinds, because the backend acts differently on each:
``ServerUnreachable`` (no answer, time-out, 5xx: try again later), ``ServerRefusedToken``
(401/403: the agent is not allowed in; an admin must act) and ``ServerRejectedJobs`` (400:
the batch is malformed and re-posting it unchanged would fail again). A held job's upload has
two more: ``SpoolUploadDamaged`` (the server received other data than was sent, e.g. cut short:
a kind of ``ServerUnreachable``, send it again) and ``SpoolTooLargeForServer`` (413: never).
"""
from __future__ import annotations

import json
import os
from collections import namedtuple

from agent import http_exchange

SPOOL_CHUNK = 1 << 20
DIGEST_HEADER = "X-Content-SHA256"
# How long an upload waits, after its headers and first 32 KiB, for the server to refuse it
# before the rest is sent (413 from the declared length, 428, 404, other data for a held job).
# The server drains at most 64 KiB of a body it refused before closing, so an answer to a
# client still sending megabytes can be lost in the reset; a job of up to 32 KiB never waits.
EARLY_ANSWER_WAIT = 0.25
FIRST_PIECE = 32 << 10
# The fields a spool upload's 400 names when the data received is not the data declared.
UPLOAD_FIELDS = frozenset({"Content-Length", DIGEST_HEADER, "body"})


class ServerError(Exception):
    """The server did not accept a request."""


class ServerUnreachable(ServerError):
    """No answer, a time-out or a server error (5xx): try again later."""


class ServerRefusedToken(ServerError):
    """401/403: the agent token is missing, revoked or not an agent's."""


class ServerRejectedJobs(ServerError):
    """400: the batch is malformed; ``errors`` names the bad fields (``jobs.3.pages``)."""

    def __init__(self, message: str, errors: dict):
        super().__init__(message)
        self.errors = errors

    def reasons(self) -> str:
        """The server's messages in one line: ``job_id: the job is already held with other data``."""
        return "; ".join(f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
                         for key, value in self.errors.items()) or "no reason given"

    def bad_indexes(self) -> set[int]:
        """Which jobs of the batch the field errors name (``jobs.3.pages`` -> 3)."""
        indexes = set()
        for key in self.errors:
            parts = str(key).split(".")
            if len(parts) >= 2 and parts[0] == "jobs" and parts[1].isdigit():
                indexes.add(int(parts[1]))
        return indexes


class SpoolUploadUnsupported(ServerError):
    """The server has no spool endpoint (404/405/501)."""


class SpoolUploadDamaged(ServerUnreachable):
    """The server got other data than was sent (cut short on the way): send it again."""


class SpoolTooLargeForServer(ServerError):
    """413: the job's data is over the server's limit; sending it again would fail again."""


class JobResult(namedtuple("JobResult", "job_key job_id status decision sheets cost message fields",
                           defaults=((),))):
    """The server's answer for one posted job: ``status`` is tracked | denied | duplicate |
    conflict (re-posted with other figures), ``fields`` a conflict's figures that differ from the
    job as recorded. (A plain namedtuple: importing dataclasses or typing costs every backend
    process milliseconds.)"""

    __slots__ = ()


def _refusal(method: str, path: str, code: int, raw: bytes) -> ServerError:
    """The exception for an HTTP error answer (see the module docstring)."""
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        payload = {"title": raw[:200].decode("utf-8", "replace")}
    if not isinstance(payload, dict):
        payload = {}
    spool = path.endswith("/spool")
    if code in (401, 403):
        return ServerRefusedToken(f"{method} {path}: HTTP {code} {payload.get('title', '')}".strip())
    if spool and code == 413:
        return SpoolTooLargeForServer(f"{method} {path}: HTTP 413 {payload.get('description', '')}".strip())
    errors = payload.get("errors") if isinstance(payload.get("errors"), dict) else {}
    if spool and code == 400 and errors and UPLOAD_FIELDS.issuperset(errors):
        return SpoolUploadDamaged(f"{method} {path}: HTTP 400 " + "; ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()))
    if code == 400:
        return ServerRejectedJobs(f"{method} {path}: HTTP 400 {payload.get('title', '')}".strip(), errors)
    if spool and code in (404, 405, 501):
        return SpoolUploadUnsupported(f"{method} {path}: HTTP {code}")
    return ServerUnreachable(f"{method} {path}: HTTP {code}")


def _answered(sock, wait: float = 0.0) -> bool:
    """Whether the server has answered (or closed) before the whole body is sent."""
    import select

    if sock is None:
        return False
    if getattr(sock, "pending", lambda: 0)():
        return True
    readable, _, _ = select.select([sock], [], [], wait)
    return bool(readable)


class ServicesClient:
    """The agent's side of ``/Services``, with the agent token and a short timeout."""

    def __init__(self, base_url: str, token: str, timeout: float = 3.0):
        if not base_url:
            raise ValueError("no ServicesUrl configured")
        self._base = base_url.rstrip("/")
        try:
            self._url = http_exchange.split_url(self._base)
        except ValueError:
            raise ValueError(f"ServicesUrl {base_url!r} is not an http(s) URL") from None
        self._path = self._url.path.rstrip("/")
        self._token = token
        self._timeout = timeout

    def __repr__(self) -> str:  # never shows the token
        return f"ServicesClient({self._base!r})"

    def _request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                 timeout: float | None = None):
        all_headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                       "User-Agent": "pageledger-agent"}
        all_headers.update(headers or {})
        # Not http.client (nor urllib): a backend is a new process per job, and http.client's
        # imports (email.parser, ssl...) cost it more than the request itself (issue 19).
        try:
            status, raw = http_exchange.exchange(self._url, method, self._path + path, body, all_headers,
                                                 timeout or self._timeout)
        except (http_exchange.BadAnswer, OSError) as err:
            raise ServerUnreachable(f"{method} {self._base}{path}: {err or type(err).__name__}") from None
        if status >= 400:
            raise _refusal(method, path, status, raw)
        if status >= 300:
            raise ServerUnreachable(f"{method} {self._base}{path}: HTTP {status} (redirects are not followed)")
        try:
            return status, (json.loads(raw) if raw else {})
        except ValueError as err:
            raise ServerUnreachable(f"{method} {path}: answer is not JSON ({err})") from None

    def _connection(self, timeout: float):
        """An http.client connection (for the held job's upload only: a rare, long request)."""
        import http.client

        if self._url.scheme == "https":
            return http.client.HTTPSConnection(self._url.hostname, self._url.port, timeout=timeout)
        return http.client.HTTPConnection(self._url.hostname, self._url.port, timeout=timeout)

    def post_jobs(self, jobs: list[dict]) -> list[JobResult]:
        """Track a batch (all or nothing on the server); one result per job, in order."""
        body = json.dumps({"jobs": jobs}).encode()
        _status, payload = self._request("POST", "/Services/jobs", body, {"Content-Type": "application/json"})
        results = payload.get("results")
        if not isinstance(results, list) or len(results) != len(jobs):
            raise ServerUnreachable("POST /Services/jobs: answer has no result for every job")
        return [JobResult(r.get("job_key", ""), str(r.get("job_id", "")), r.get("status", ""),
                          r.get("decision", "print"), r.get("sheets"), str(r.get("cost", "")),
                          r.get("message", "") or "", tuple(str(f) for f in r.get("fields") or ()))
                for r in results]

    def get_policy(self) -> dict:
        _status, payload = self._request("GET", "/Services/policy")
        if payload.get("offline") not in ("print", "refuse"):
            raise ServerUnreachable(f"GET /Services/policy: unexpected answer {payload!r}")
        return payload

    def upload_spool(self, job_id: str, path: str, timeout: float = 60.0) -> int:
        """Stream a held job's data, 1 MiB at a time (jobs can be hundreds of MB), with its length
        and SHA-256 declared, so that the server keeps it only if it arrives whole.

        On http.client, not urllib: the server may answer before the body is sent (413 from the
        declared length) and close; urllib would only report the broken pipe. This waits briefly
        for such an answer after the headers and first 32 KiB, stops sending once an answer is waiting or the
        connection breaks, and reads the answer."""
        import hashlib  # only a held job needs these: not on every job's import path
        import http.client
        from urllib.parse import quote

        request_path = f"/Services/jobs/{quote(job_id, safe='')}/spool"
        url = self._url
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            digest = hashlib.sha256()
            while chunk := handle.read(SPOOL_CHUNK):
                digest.update(chunk)
            handle.seek(0)
            connection = self._connection(timeout)
            try:
                connection.putrequest("PUT", url.path.rstrip("/") + request_path, skip_accept_encoding=True)
                for name, value in {"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                                    "User-Agent": "pageledger-agent", "Content-Type": "application/octet-stream",
                                    "Content-Length": str(size), DIGEST_HEADER: digest.hexdigest()}.items():
                    connection.putheader(name, value)
                connection.endheaders(handle.read(FIRST_PIECE))
                if size > FIRST_PIECE and not _answered(connection.sock, wait=EARLY_ANSWER_WAIT):
                    while not _answered(connection.sock) and (chunk := handle.read(SPOOL_CHUNK)):
                        try:
                            connection.send(chunk)
                        except (BrokenPipeError, ConnectionResetError):
                            break  # the server stopped reading: its answer says why
                response = connection.getresponse()
                raw = response.read()
            except (http.client.HTTPException, OSError) as err:
                raise ServerUnreachable(f"PUT {self._base}{request_path}: {err or type(err).__name__}") from None
            finally:
                connection.close()
        if response.status >= 400:
            raise _refusal("PUT", request_path, response.status, raw)
        return response.status
