"""Long work in the background, one run at a time (adapters.background_runs.OneRunAtATime), as
the API and the console show it: start a run, then read its state and progress until it is done
(`audit verify`, a directory sync). Each route names its roles and words; the code is this."""
from __future__ import annotations

from typing import Any

import falcon
from marshmallow import Schema, fields, validate

from adapters.background_runs import OneRunAtATime
from api.openapi import Operation

class RunStateSchema(Schema):
    id = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(("queued", "running", "done", "failed")))
    progress = fields.Float(required=True, metadata={"description": "0 to 1"})
    phase = fields.String(required=True, metadata={"description": "what it is doing now, in words"})
    error = fields.String(required=True)
    result = fields.Dict(required=True, allow_none=True, metadata={"description": "once done: what it found"})


def run_state_json(state: dict[str, Any]) -> dict[str, Any]:
    return {"id": state["id"], "state": state["state"], "progress": float(state["progress"]),
            "phase": state.get("phase", ""), "error": state["error"], "result": state.get("result")}


class StartRunResource:
    """POST: start a run (or get the one already running); 202 with its state and where to poll."""

    def __init__(self, runs: OneRunAtATime, roles: tuple[str, ...], location: str, summary: str) -> None:
        self.runs = runs
        self.roles = roles
        self.location = location
        self.openapi = {"post": Operation(summary, responses={202: f"Started, or the one already running: its "
                                                                   f"state (as GET {location}/{{id}})"})}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        run_id = self.runs.start(by=req.context.principal.author)
        resp.status = falcon.HTTP_202
        resp.location = f"{self.location}/{run_id}"
        resp.media = run_state_json(self.runs.load(run_id) or {})


class RunStateResource:
    """GET: a run's state, progress and, once done, its result."""

    def __init__(self, runs: OneRunAtATime, roles: tuple[str, ...], what: str, summary: str,
                 reply: type[Schema]) -> None:
        self.runs = runs
        self.roles = roles
        self.what = what
        self.openapi = {"get": Operation(summary, reply=reply, responses={404: f"No such {what}"})}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        state = self.runs.load(run_id)
        if state is None:
            raise falcon.HTTPNotFound(title=f"No such {self.what}", description=f"no {self.what} with this id")
        resp.media = run_state_json(state)
