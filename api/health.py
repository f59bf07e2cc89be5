"""/healthz: is the database reachable, and how far behind the log is each projection."""
from __future__ import annotations

from typing import Callable

import falcon

from api.openapi import Operation


class HealthResource:
    public = True
    openapi = {"get": Operation("Health: the event log's head and each projection's position",
                                responses={200: "ok", 503: "The database or a projection is not ok"})}

    def __init__(self, head: Callable[[], int], positions: Callable[[], dict[str, int]]) -> None:
        self.head = head  # the newest notification id in the event log
        self.positions = positions  # where each projection stands

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            head = self.head()
            positions = self.positions()
        except Exception as exc:  # noqa: BLE001 - report, don't crash the probe
            resp.status = falcon.HTTP_503
            resp.media = {"status": "unavailable", "error": type(exc).__name__}
            return
        resp.media = {"status": "ok", "events": head, "projections": positions}
