"""/Services: the endpoints the client agent talks to (role "agent" only)."""
from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID

import falcon

from commands.hold_jobs import UnknownJob, hold_job
from commands.track_jobs import parse_batch, track_jobs
from commands.validation import InvalidRequest
from pageledger.spool import SpoolTooLarge
from pageledger.bootstrap import Runtime
from domain.costs import format_money


class JobsResource:
    roles = ("agent",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        reports = parse_batch(req.bounded_stream.read())
        outcomes = track_jobs(self.runtime.app, reports, self.runtime.printers,
                              gate=self.runtime.identity.licensing.gate_jobs)
        resp.media = {"results": [
            {"job_key": o.job_key, "job_id": str(o.job_id), "status": o.status, "decision": o.decision,
             "sheets": o.sheets, "cost": format_money(o.cost), "message": o.message}
            for o in outcomes
        ]}


class PolicyResource:
    roles = ("agent",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"offline": self.runtime.settings.offline_policy,
                      "server_time": datetime.now(timezone.utc).isoformat()}


class SpoolResource:
    """PUT /Services/jobs/{job_id}/spool: a held job's data, streamed (jobs reach 400 MB)."""

    roles = ("agent",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_put(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        try:
            jid = UUID(job_id)
        except ValueError:
            raise InvalidRequest({"job_id": ["not a job id"]}) from None
        # A chunked upload has no Content-Length: falcon's bounded stream would read nothing,
        # while the server's own input stream decodes the chunks up to their end.
        body = req.bounded_stream if req.content_length is not None else req.stream
        try:
            job = hold_job(self.runtime.app, jid, lambda: self.runtime.spool.write(body))
        except UnknownJob:
            raise falcon.HTTPNotFound(title="Unknown job", description=f"no job {jid}") from None
        except SpoolTooLarge as exc:
            raise falcon.HTTPContentTooLarge(title="Too large", description=str(exc)) from None
        resp.status = falcon.HTTP_201
        resp.media = {"job_id": str(jid), "state": job.state, "spool": job.spool, "size": job.spool_size}
