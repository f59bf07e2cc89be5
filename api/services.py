"""/Services: the endpoints the client agent talks to (role "agent" only)."""
from __future__ import annotations

from datetime import datetime, timezone

import falcon

from api.errors import load
from commands.track_jobs import TrackJobsSchema, track_jobs
from pageledger.bootstrap import Runtime
from domain.costs import format_money


class JobsResource:
    roles = ("agent",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.schema = TrackJobsSchema()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.get_media(default_when_empty=None)
        batch = load(self.schema, body if body is not None else {})
        outcomes = track_jobs(self.runtime.app, batch["jobs"], self.runtime.default_schedule,
                              gate=self.runtime.identity.licensing.gate_jobs)
        self.runtime.saved()
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
