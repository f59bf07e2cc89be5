"""A small real HTTP server speaking the agent's side of docs/services-api.md, on loopback.

It stands in for the PageLedger server where a test is about the agent alone (no server
process needed): jobs are kept by ``job_key`` (a re-post answers "duplicate", or "conflict"
naming the figures that differ from the first post, answered with the first's), decisions are
chosen per printer, spool uploads (chunked or not) are written to disk, and the server can
be told to fail or hang. End-to-end tests use the real server (``live_server``) instead.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = "agent-secret-token-123"
# What a re-post must repeat to be a duplicate (commands.jobs.SENT_FIGURES on the server).
FIGURES = ("user", "printer", "client_host", "submitted_at", "pages", "copies", "colour_pages", "duplex", "paper",
           "size", "pdl", "document")


class ServicesDouble:
    def __init__(self, spool_dir: Path, token: str = TOKEN):
        self.token = token
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, dict] = {}
        self.posts: list[list[dict]] = []
        self.uploads: dict[str, dict] = {}
        self.decisions: dict[str, tuple[str, str]] = {}  # printer -> (decision, message)
        self.offline_policy = "print"
        self.fail_with: int | None = None
        self.delay = 0.0
        self.spool_supported = True
        self.reject_printers: set[str] = set()
        self.spool_fail_with: int | None = None
        # What a 400 from the spool endpoint names (the real server's answers for each case).
        self.spool_fail_errors: dict = {"job_id": ["the job is already held with other data"]}
        # What a duplicate (or conflict) is answered with: None = the printer's decision again;
        # "print" = as the foundation server did (decision "print" for every duplicate).
        self.duplicate_decision: str | None = None
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "ServicesDouble":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {double.token}":
                    self._send(401, {"title": "401 Unauthorized"})
                    return False
                return True

            def _body_chunks(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return
                        remaining = size
                        while remaining:
                            chunk = self.rfile.read(min(remaining, 1 << 16))
                            remaining -= len(chunk)
                            yield chunk
                        self.rfile.readline()
                else:
                    remaining = int(self.headers.get("Content-Length") or 0)
                    while remaining:
                        chunk = self.rfile.read(min(remaining, 1 << 16))
                        remaining -= len(chunk)
                        yield chunk

            def _common(self) -> bool:
                if double.delay:
                    time.sleep(double.delay)
                if double.fail_with:
                    for _ in self._body_chunks():
                        pass
                    self._send(double.fail_with, {"title": "failing on purpose"})
                    return False
                return self._authorised()

            def do_GET(self) -> None:
                if not self._common():
                    return
                if self.path == "/Services/policy":
                    self._send(200, {"offline": double.offline_policy, "server_time": "2026-11-25T09:00:00+00:00"})
                else:
                    self._send(404, {"title": "404 Not Found"})

            def do_POST(self) -> None:
                if not self._common():
                    return
                if self.path != "/Services/jobs":
                    self._send(404, {"title": "404 Not Found"})
                    return
                jobs = json.loads(b"".join(self._body_chunks()))["jobs"]
                errors = {}
                for index, job in enumerate(jobs):
                    if not isinstance(job.get("pages"), int) or job["pages"] < 0:
                        errors[f"jobs.{index}.pages"] = ["Must be greater than or equal to 0."]
                    if job.get("printer") in double.reject_printers:
                        errors[f"jobs.{index}.printer"] = ["Unknown printer."]
                    if not job.get("job_key"):
                        errors[f"jobs.{index}.job_key"] = ["Missing data for required field."]
                if errors:
                    self._send(400, {"title": "Invalid jobs", "errors": errors})
                    return
                results = []
                with double.lock:
                    double.posts.append(jobs)
                    for job in jobs:
                        recorded = double.jobs.setdefault(job["job_key"], job)
                        fields = [] if recorded is job else [
                            f for f in FIGURES if (str(recorded.get(f)).lower() != str(job.get(f)).lower()
                                                   if f == "printer" else recorded.get(f) != job.get(f))]
                        status = "tracked" if recorded is job else "conflict" if fields else "duplicate"
                        decision, message = double.decisions.get(recorded["printer"], ("print", ""))
                        if status != "tracked" and double.duplicate_decision:
                            decision, message = double.duplicate_decision, "already recorded"
                        if status == "conflict":
                            message = f"already recorded with other figures ({', '.join(fields)})"
                        per_copy = (recorded["pages"] + 1) // 2 if recorded["duplex"] else recorded["pages"]
                        results.append({"job_key": job["job_key"], "job_id": f"id-{len(double.jobs)}",
                                        "status": status, "decision": decision,
                                        "sheets": per_copy * recorded["copies"],
                                        "cost": f"{recorded['pages'] * recorded['copies'] * 0.1:.4f}",
                                        "message": message, "fields": fields})
                self._send(200, {"results": results})

            def do_PUT(self) -> None:
                if not self._common():
                    return
                parts = self.path.strip("/").split("/")
                if not double.spool_supported or len(parts) != 4 or parts[:2] != ["Services", "jobs"] or parts[3] != "spool":
                    for _ in self._body_chunks():
                        pass
                    self._send(404, {"title": "404 Not Found"})
                    return
                if double.spool_fail_with:
                    for _ in self._body_chunks():
                        pass
                    if double.spool_fail_with == 400:
                        self._send(400, {"title": "Invalid input", "errors": double.spool_fail_errors})
                    elif double.spool_fail_with == 413:
                        self._send(413, {"title": "Too large", "description": "this server holds jobs of up to "
                                                                              "1048576 bytes (1 MiB, setting max_spool_mib)"})
                    else:
                        self._send(double.spool_fail_with, {"title": "spool store unavailable"})
                    return
                target = double.spool_dir / parts[2]
                received = 0
                largest_chunk = 0
                with open(target, "wb") as out:
                    for chunk in self._body_chunks():
                        out.write(chunk)
                        received += len(chunk)
                        largest_chunk = max(largest_chunk, len(chunk))
                double.uploads[parts[2]] = {"bytes": received, "path": target,
                                            "chunked": self.headers.get("Transfer-Encoding", "").lower() == "chunked",
                                            "content_length": self.headers.get("Content-Length"),
                                            "sha256": self.headers.get("X-Content-SHA256")}
                self._send(201, {"job_id": parts[2], "bytes": received})

        return Handler
