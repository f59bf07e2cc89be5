"""Secure Print (/secure-print): held jobs, release to a printer or delete. A hook: the page and
its nav entry are here; the lead wires it to secure release's held-jobs query and handlers."""
from __future__ import annotations

import falcon

from api.console.render import READERS, Renderer
from api.openapi import Operation


class SecurePrintPage:
    page = True
    roles = READERS
    openapi = {"get": Operation("Secure Print (HTML): held jobs", responses={200: "The page", 303: "To login"})}

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.renderer.page(resp, "message.html", req, title="Secure Print", alert=False, link=None,
                           message="Held jobs are listed here once secure release is installed on this server.")
