"""HTTP client of the server's ``/Services`` API (docs/services-api.md), on the standard library.

Every call has a short timeout: a print job must not wait long on an unreachable server.
Failures come back as three kinds, because the backend acts differently on each:
``ServerUnreachable`` (no answer, time-out, 5xx: try again later), ``ServerRefusedToken``
(401/403: the agent is not allowed in; an admin must act) and ``ServerRejectedJobs`` (400:
the batch is malformed and re-posting it unchanged would fail again).
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote

SPOOL_CHUNK = 1 << 20


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


@dataclass(frozen=True)
class JobResult:
    """The server's answer for one posted job."""

    job_key: str
    job_id: str
    status: str  # tracked | denied | duplicate | conflict (re-posted with other figures)
    decision: str
    sheets: int | None
    cost: str
    message: str
    fields: tuple[str, ...] = ()  # a conflict's figures that differ from the job as recorded


class ServicesClient:
    """The agent's side of ``/Services``, with the agent token and a short timeout."""

    def __init__(self, base_url: str, token: str, timeout: float = 3.0):
        if not base_url:
            raise ValueError("no ServicesUrl configured")
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def __repr__(self) -> str:  # never shows the token
        return f"ServicesClient({self._base!r})"

    def _request(self, method: str, path: str, body=None, headers: dict | None = None,
                 timeout: float | None = None):
        all_headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                       "User-Agent": "pageledger-agent"}
        all_headers.update(headers or {})
        request = urllib.request.Request(self._base + path, data=body, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self._timeout) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw else {})
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = {"title": raw[:200].decode("utf-8", "replace")}
            if err.code in (401, 403):
                raise ServerRefusedToken(f"{method} {path}: HTTP {err.code} {payload.get('title', '')}".strip()) from None
            if err.code == 400:
                raise ServerRejectedJobs(f"{method} {path}: HTTP 400 {payload.get('title', '')}".strip(),
                                         payload.get("errors") or {}) from None
            if err.code in (404, 405, 501) and path.endswith("/spool"):
                raise SpoolUploadUnsupported(f"{method} {path}: HTTP {err.code}") from None
            raise ServerUnreachable(f"{method} {path}: HTTP {err.code}") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServerUnreachable(f"{method} {self._base}{path}: {reason}") from None
        except ValueError as err:
            raise ServerUnreachable(f"{method} {path}: answer is not JSON ({err})") from None

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
        """Stream a held job's data (chunked, 1 MiB at a time: jobs can be hundreds of MB)."""

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as handle:
                while True:
                    chunk = handle.read(SPOOL_CHUNK)
                    if not chunk:
                        return
                    yield chunk

        status, _payload = self._request(
            "PUT", f"/Services/jobs/{quote(job_id, safe='')}/spool", chunks(),
            {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"}, timeout=timeout)
        return status
