"""Printers and Queues (/printers): each printer jobs have named, its cost schedule and secure
hold, changed through commands.printers (SetCostSchedule, SetSecureHold) as the CLI does.
Release-code mode, hold time, printer groups and card readers belong to secure release and
wait for its handlers; so does the schedule's history (a printers read model)."""
from __future__ import annotations

import falcon
import sqlalchemy as sa

from api.console.forms import form
from api.console.render import ADMINS, READERS, Renderer
from api.openapi import Operation
from commands.printers import PrinterCache, SetCostSchedule, SetSecureHold
from domain.costs import CostSchedule
from domain.units import parse_money
from projections.jobs import printer_names

MAX_PRINTERS_SHOWN = 500


class PrintersPage:
    page = True
    form_csrf = True
    roles = READERS
    method_roles = {"post": ADMINS}
    openapi = {"get": Operation("Printers (HTML): cost schedule and secure hold",
                                responses={200: "The page", 303: "To login"}),
               "post": Operation("Change one printer (HTML form with csrf_token): printer and either secure=on|off "
                                 "or mono_page, colour_page, duplex_discount_pct",
                                 responses={303: "Saved", 400: "Bad fields, shown beside them"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, printers: PrinterCache,
                 set_cost_schedule: SetCostSchedule, set_secure_hold: SetSecureHold) -> None:
        self.renderer = renderer
        self.reader = reader
        self.printers = printers
        self.set_cost_schedule = set_cost_schedule
        self.set_secure_hold = set_secure_hold

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str = falcon.HTTP_200,
              errors: dict | None = None) -> None:
        with self.reader.connect() as conn:
            names = printer_names(conn)[:MAX_PRINTERS_SHOWN]
        found, _ = self.printers.for_names(names)
        rows = [(name, found[name.lower()]) for name in names]
        self.renderer.page(resp, "printers.html", req, status=status, title="Printers", printers=rows,
                           errors=errors or {}, notice="Saved." if req.get_param("done") == "saved" else "")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._show(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = form(req)
        name = data.get("printer", "")
        with self.reader.connect() as conn:
            known = {n.lower(): n for n in printer_names(conn)}
        if name.lower() not in known:
            return self._show(req, resp, falcon.HTTP_400, {"printer": ["no such printer"]})
        name = known[name.lower()]
        if "secure" in data:
            if data["secure"] not in ("on", "off"):
                return self._show(req, resp, falcon.HTTP_400, {"secure": ["on or off"]})
            self.set_secure_hold(name, data["secure"] == "on")
            raise falcon.HTTPSeeOther("/printers?done=saved")
        errors: dict[str, list[str]] = {}
        prices: dict[str, int] = {}
        for key in ("mono_page", "colour_page"):
            try:
                prices[key] = parse_money(data.get(key, "")[:40])
            except ValueError as exc:
                errors[key] = [str(exc)]
        discount = data.get("duplex_discount_pct", "0").strip() or "0"
        if not discount.isdigit() or not 0 <= int(discount) <= 100:
            errors["duplex_discount_pct"] = ["a whole percentage from 0 to 100"]
        if not errors:
            try:
                schedule = CostSchedule(mono_page=prices["mono_page"], colour_page=prices["colour_page"],
                                        duplex_discount_pct=int(discount))
            except ValueError as exc:
                errors["mono_page"] = [str(exc)]
        if errors:
            return self._show(req, resp, falcon.HTTP_400, errors)
        self.set_cost_schedule(name, schedule)
        raise falcon.HTTPSeeOther("/printers?done=saved")
