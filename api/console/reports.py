"""Reports (/reports): the catalogue, run with filters, charts, CSV/XLSX/PDF, schedules. A hook:
the page and its nav entry are here; the lead wires it to the reports catalogue and renderers."""
from __future__ import annotations

import falcon

from api.console.render import READERS, Renderer
from api.openapi import Operation


class ReportsPage:
    page = True
    roles = READERS
    openapi = {"get": Operation("Reports (HTML): the catalogue", responses={200: "The page", 303: "To login"})}

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.renderer.page(resp, "message.html", req, title="Reports", alert=False,
                           link=("Job Accounting and its CSV export", "/jobs"),
                           message="The report catalogue appears here once reports are installed on this server.")
