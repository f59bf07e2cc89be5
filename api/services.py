"""/Services: the endpoints the client agent talks to (role "agent" only)."""
from __future__ import annotations

from datetime import datetime, timezone

import falcon

from commands.track_jobs import parse_batch, track_jobs
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
