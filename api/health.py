"""/healthz: is the database reachable, and how far behind the log is each projection."""
from __future__ import annotations

import falcon

from pageledger.bootstrap import Runtime
from projections.queries import projection_positions


class HealthResource:
    public = True

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            head = int(self.runtime.app.recorder.max_notification_id() or 0)
            with self.runtime.reader.connect() as conn:
                positions = projection_positions(conn)
        except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
            resp.status = falcon.HTTP_503
            resp.media = {"status": "unavailable", "error": type(exc).__name__}
            return
        resp.media = {"status": "ok", "events": head, "projections": positions}
