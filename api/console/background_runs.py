"""The console's pages of long work in the background (api.background_runs): the form post that
starts a run, and the run's page that follows its progress and then shows its result."""
from __future__ import annotations

import falcon

from adapters.background_runs import OneRunAtATime
from api.background_runs import run_state_json
from api.console.render import Renderer
from api.openapi import Operation

RUN_ID = r"^[0-9a-f]{32}$"


class StartRunPage:
    """The console's form post that starts a run, then to the run's page."""

    page = True
    form_csrf = True

    def __init__(self, runs: OneRunAtATime, roles: tuple[str, ...], page_path: str, summary: str) -> None:
        self.runs = runs
        self.roles = roles
        self.page_path = page_path
        self.openapi = {"post": Operation(summary, responses={303: "To its progress page"})}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPSeeOther(f"{self.page_path}/{self.runs.start(by=req.context.principal.author)}")


class RunPage:
    """The console's page of a run: its progress (progress.js polls the API's state; without
    script, a Refresh link), then its result, in `template`."""

    page = True

    def __init__(self, renderer: Renderer, runs: OneRunAtATime, roles: tuple[str, ...], template: str, title: str,
                 poll_path: str, what: str) -> None:
        self.renderer = renderer
        self.runs = runs
        self.roles = roles
        self.template = template
        self.title = title
        self.poll_path = poll_path
        self.what = what
        self.openapi = {"get": Operation(f"{title}: its progress, then its result (HTML)",
                                         responses={200: "The page", 303: "To login", 404: f"No such {what}"},
                                         path_patterns={"run_id": RUN_ID})}

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        state = self.runs.load(run_id)
        if state is None:
            raise falcon.HTTPNotFound(title=f"No such {self.what}",
                                      description=f"There is no {self.what} with that id (they are kept a day).")
        self.renderer.page(resp, self.template, req, title=self.title, run=run_state_json(state),
                           poll=f"{self.poll_path}/{run_id}")
