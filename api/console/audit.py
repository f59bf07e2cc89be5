"""Audit (/audit): the event history, filterable, and `audit verify`. A hook: the page and its
nav entry are here; the lead wires it to the audit engineer's queries."""
from __future__ import annotations

import falcon

from api.console.render import READERS, Renderer
from api.openapi import Operation


class AuditPage:
    page = True
    roles = READERS
    openapi = {"get": Operation("Audit (HTML): the event history", responses={200: "The page", 303: "To login"})}

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.renderer.page(resp, "message.html", req, title="Audit", alert=False, link=None,
                           message="The event history appears here once the audit log is installed on this server.")
