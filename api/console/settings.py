"""Administration → Settings (/admin/settings) and → Licensing (/admin/licensing).

Settings save field by field: each input carries its field name and the value it was shown
with; console.js PATCHes /api/v1/settings/{field} with {value, expected} when it changes
(commands.site_settings.ChangeSetting: one FieldChanged event each) and shows "Saved" or the
error beside that field. There is no form-wide save, so two admins editing different fields
never overwrite each other, and a stale edit is refused with the current value shown.

Licensing shows the licence read model and this host's name and MAC, and activates through
api.licence.activate (the API's own path): online with key and company, or via a licence file.
"""
from __future__ import annotations

from typing import Callable

import falcon
import sqlalchemy as sa

from adapters.licence_keys import HostIdentity
from api.console.forms import Progress, caught_up, form
from api.console.render import ADMINS, READERS, Renderer
from api.errors import InvalidInput, RefusedChange, load
from api.licence import ActivateSchema, activate
from api.openapi import Operation
from commands.licensing import Licensing
from commands.site_settings import SiteSettingsReader
from domain.site_settings import FIELDS, shown_value
from projections.licence_seats import licence_summary

LICENCE_FILE_MAX = 100_000


class SettingsPage:
    page = True
    roles = READERS
    openapi = {"get": Operation("Site settings (HTML), each field saved on its own through "
                                "PATCH /api/v1/settings/{field}", responses={200: "The page", 303: "To login"})}

    def __init__(self, renderer: Renderer, reader: SiteSettingsReader) -> None:
        self.renderer = renderer
        self.reader = reader

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = self.reader.values()
        fields = [(spec, shown_value(name, values[name])) for name, spec in FIELDS.items()]
        self.renderer.page(resp, "settings.html", req, title="Settings", fields=fields,
                           editable=req.context.principal.role in ADMINS)


class LicensingPage:
    page = True
    form_csrf = True
    roles = READERS
    method_roles = {"post": ADMINS}
    openapi = {"get": Operation("Licensing (HTML): status, Activate, Activate via File",
                                responses={200: "The page", 303: "To login"}),
               "post": Operation("Activate (HTML form with csrf_token): method=online with key and company, or "
                                 "method=file with company and the licence file (multipart not needed: its text)",
                                 responses={303: "Activated", 400: "Refused, shown beside the field",
                                            409: "Online activation unavailable", 502: "Activation service"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, clock: Callable[[], int], host: HostIdentity,
                 licensing: Licensing, progress: Progress) -> None:
        self.progress = progress
        self.renderer = renderer
        self.reader = reader
        self.clock = clock
        self.host = host
        self.licensing = licensing

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str = falcon.HTTP_200,
              errors: dict | None = None, entered: dict | None = None) -> None:
        with self.reader.connect() as conn:
            summary = licence_summary(conn, self.clock())
        self.renderer.page(resp, "licensing.html", req, status=status, title="Licensing", licence=summary,
                           host=self.host, errors=errors or {}, entered=entered or {},
                           notice="Activated." if req.get_param("done") == "activated" else "")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._show(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = {k: v for k, v in form(req).items() if k != "csrf_token" and (v or k == "method")}
        entered = {k: data.get(k, "") for k in ("method", "company", "key")}
        try:
            activate(self.licensing, load(ActivateSchema(), data))
        except (InvalidInput, RefusedChange) as exc:
            status = falcon.HTTP_400 if isinstance(exc, InvalidInput) else falcon.HTTP_409
            return self._show(req, resp, status, exc.field_errors, entered)
        except falcon.HTTPBadGateway as exc:
            return self._show(req, resp, falcon.HTTP_502, {"method": [exc.description or "unreachable"]}, entered)
        caught_up(self.progress, ("licence_seats",))
        raise falcon.HTTPSeeOther("/admin/licensing?done=activated")
