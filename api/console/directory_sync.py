"""Users → Sync with the directory (/directory-sync): the same SyncUsers as `pageledger users
sync` and POST /api/v1/users/sync, run as background work (commands.directory_sync: rq on
Redis, else a thread of the server, one sync at a time), its progress followed on
/directory-sync/{id} (progress.js polls GET /api/v1/users/syncs/{id}; without script, a Refresh
link) and then its report: who was imported, updated, set Inactive or reactivated, each clash."""
from __future__ import annotations

import falcon

from api.console.render import ADMINS, Renderer
from api.openapi import Operation
from api.users import sync_run_json
from commands.directory_sync import BackgroundSyncs


class DirectorySyncPage:
    page = True
    form_csrf = True
    roles = ADMINS
    openapi = {"post": Operation("Start a directory sync (HTML form with csrf_token); to its progress page",
                                 responses={303: "To the sync's page"})}

    def __init__(self, syncs: BackgroundSyncs) -> None:
        self.syncs = syncs

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPSeeOther(f"/directory-sync/{self.syncs.start(by=req.context.principal.author)}")


class DirectorySyncRunPage:
    page = True
    roles = ADMINS
    openapi = {"get": Operation("A directory sync's progress, then its report (HTML)",
                                responses={200: "The page", 303: "To login", 404: "No such sync"},
                                path_patterns={"run_id": r"^[0-9a-f]{32}$"})}

    def __init__(self, renderer: Renderer, syncs: BackgroundSyncs) -> None:
        self.renderer = renderer
        self.syncs = syncs

    def on_get(self, req: falcon.Request, resp: falcon.Response, run_id: str) -> None:
        state = self.syncs.load(run_id)
        if state is None:
            raise falcon.HTTPNotFound(title="No such sync", description="There is no directory sync with that id "
                                                                        "(they are kept a day).")
        self.renderer.page(resp, "directory_sync.html", req, title="Users: sync with the directory",
                           run=sync_run_json(state), poll=f"/api/v1/users/syncs/{run_id}")
