"""Audit → Verify (/audit/verify): `audit verify` run from the console, the same code as
`pageledger audit verify` and POST /api/v1/audit/verifications (projections.background_verify:
the log's seals, then every read model rebuilt and compared). It can take minutes on a large
log, so it runs as background work (rq on Redis, else a thread of the server), and
/audit/verify/{id} shows its progress (progress.js polls the API's state; without script, a
Refresh link) and then its result check by check."""
from __future__ import annotations

import falcon

from api.audit import verification_state_json
from api.console.render import READERS, Renderer
from api.openapi import Operation
from projections.background_verify import BackgroundVerifications


class AuditVerifyPage:
    page = True
    form_csrf = True
    roles = READERS
    openapi = {"post": Operation("Start `audit verify` (HTML form with csrf_token); to its progress page",
                                 responses={303: "To the verification's page"})}

    def __init__(self, runs: BackgroundVerifications) -> None:
        self.runs = runs

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        run_id = self.runs.start(by=req.context.principal.subject)
        raise falcon.HTTPSeeOther(f"/audit/verify/{run_id}")


class AuditVerifyRunPage:
    page = True
    roles = READERS
    openapi = {"get": Operation("A verification's progress, then its result per check (HTML)",
                                responses={200: "The page", 303: "To login", 404: "No such verification"},
                                path_patterns={"run_id": r"^[0-9a-f]{32}$"})}

    def __init__(self, renderer: Renderer, runs: BackgroundVerifications) -> None:
        self.renderer = renderer
        self.runs = runs

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        state = self.runs.load(run_id)
        if state is None:
            raise falcon.HTTPNotFound(title="No such verification", description="There is no verification with "
                                                                                "that id (they are kept a day).")
        self.renderer.page(resp, "audit_verify.html", req, title="Audit: verify the log",
                           run=verification_state_json(state), poll=f"/api/v1/audit/verifications/{run_id}")
