"""Printers and Queues (/printers): each printer jobs have named, its cost schedule with its
history, secure hold, and the release settings of a secure queue — hold time, release-code mode,
printer group, card reader and its number format.

Changed through the handlers the CLI and the API use (commands.printers: SetCostSchedule,
SetSecureHold, SetReleaseSettings); release settings are read with the API's own
`api.release.release_settings` (ReleaseSettingsSchema), so the page refuses what
PUT /api/v1/printers/{name}/release refuses, with the same words, beside the form. The schedule's
history is read from the log (projections.cost_schedule_history)."""
from __future__ import annotations

from typing import Any

import falcon
import sqlalchemy as sa

from api.console.forms import form
from api.console.render import ADMINS, READERS, Renderer
from api.errors import InvalidInput
from api.openapi import Operation
from api.release import release_settings
from commands.printers import PrinterCache, SetCostSchedule, SetReleaseSettings, SetSecureHold
from commands.validation import InvalidRequest
from domain.costs import CostSchedule
from domain.printers import CODE_MODES
from domain.units import parse_money
from projections.cost_schedule_history import schedule_history
from projections.event_history import EventHistory
from projections.jobs import printer_names

PRINTERS_PER_PAGE = 20  # each printer's forms and schedule history weigh ~3.3 KB: a page stays < 150 KB
HISTORY_SHOWN = 10  # schedule versions shown per printer, newest first
CHANGES = ("prices", "secure", "release", "reader")
READER_FORMATS = ("dec", "hex", "wiegand26")
# What each release-code mode asks of whoever releases a job (domain.printers).
CODE_MODE_HELP = {"none": "none (logging in is enough)", "predefined": "the user's own PIN",
                  "generated": "a code generated for each job", "entered": "a code given with the job"}


class PrintersPage:
    page = True
    form_csrf = True
    roles = READERS
    method_roles = {"post": ADMINS}
    openapi = {"get": Operation("Printers and Queues (HTML): cost schedule and its history, secure hold, "
                                "hold time, release-code mode, printer group, card reader",
                                responses={200: "The page", 303: "To login"}),
               "post": Operation("Change one printer (HTML form with csrf_token and printer): "
                                 "change=prices (mono_page, colour_page, duplex_discount_pct), "
                                 "change=secure (secure=on|off), change=release (hold_seconds, code_mode, "
                                 "code_length, group) or change=reader (reader_host, reader_port, reader_format; "
                                 "both empty removes the reader) — release settings as "
                                 "PUT /api/v1/printers/{name}/release takes them",
                                 responses={303: "Saved", 400: "Bad fields, shown beside the form"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, printers: PrinterCache,
                 set_cost_schedule: SetCostSchedule, set_secure_hold: SetSecureHold,
                 set_release_settings: SetReleaseSettings, history: EventHistory) -> None:
        self.renderer = renderer
        self.reader = reader
        self.printers = printers
        self.set_cost_schedule = set_cost_schedule
        self.set_secure_hold = set_secure_hold
        self.set_release_settings = set_release_settings
        self.history = history

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str = falcon.HTTP_200,
              errors: dict | None = None, failed: tuple[str, str] | None = None,
              entered: dict | None = None) -> None:
        with self.reader.connect() as conn:
            every = printer_names(conn)
        pages = max(1, -(-len(every) // PRINTERS_PER_PAGE))
        if failed and failed[0] in every:  # the page of the printer whose form was refused
            page = every.index(failed[0]) // PRINTERS_PER_PAGE + 1
        else:
            wanted = req.get_param("page") or "1"
            page = min(int(wanted), pages) if wanted.isdigit() and len(wanted) < 7 and int(wanted) >= 1 else 1
        names = every[(page - 1) * PRINTERS_PER_PAGE:page * PRINTERS_PER_PAGE]
        found, _ = self.printers.for_names(names)
        rows = [(name, found[name.lower()], schedule_history(self.history, found[name.lower()].id,
                                                              newest=HISTORY_SHOWN)) for name in names]
        self.renderer.page(resp, "printers.html", req, status=status, title="Printers and Queues", printers=rows,
                           errors=errors or {}, failed=failed or ("", ""), entered=entered or {},
                           code_modes=[(m, CODE_MODE_HELP.get(m, m)) for m in CODE_MODES],
                           reader_formats=READER_FORMATS, page=page, pages=pages, total=len(every),
                           per_page=PRINTERS_PER_PAGE,
                           notice="Saved." if req.get_param("done") == "saved" else "")

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
        change = data.get("change") or ("secure" if "secure" in data else "prices")
        if change not in CHANGES:
            return self._show(req, resp, falcon.HTTP_400, {"change": [f"one of {', '.join(CHANGES)}"]})
        if change == "secure":
            if data.get("secure") not in ("on", "off"):
                return self._show(req, resp, falcon.HTTP_400, {"secure": ["on or off"]}, (name, change))
            self.set_secure_hold(name, data["secure"] == "on", by=req.context.principal.author)
        elif change == "prices":
            schedule, errors = _schedule(data)
            if schedule is None:
                return self._show(req, resp, falcon.HTTP_400, errors, (name, change), data)
            self.set_cost_schedule(name, schedule, by=req.context.principal.author)
        else:
            body = _release_body(data) if change == "release" else _reader_body(data, self.printers, name)
            try:
                self.set_release_settings(name, release_settings(body), by=req.context.principal.author)
            except InvalidInput as exc:
                return self._show(req, resp, falcon.HTTP_400, exc.field_errors, (name, change), data)
            except InvalidRequest as exc:
                return self._show(req, resp, falcon.HTTP_400, exc.errors, (name, change), data)
        raise falcon.HTTPSeeOther("/printers?done=saved")


def _schedule(data: dict[str, Any]) -> tuple[CostSchedule | None, dict[str, list[str]]]:
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
    if errors:
        return None, errors
    try:
        return CostSchedule(mono_page=prices["mono_page"], colour_page=prices["colour_page"],
                            duplex_discount_pct=int(discount)), {}
    except ValueError as exc:
        return None, {"mono_page": [str(exc)]}


def _release_body(data: dict[str, Any]) -> dict[str, Any]:
    """The release form as the API's JSON body: the same schema reads (and refuses) both."""
    return {k: data[k] for k in ("hold_seconds", "code_mode", "code_length", "group") if k in data}


def _reader_body(data: dict[str, Any], printers: PrinterCache, name: str) -> dict[str, Any]:
    """The card-reader form as the API's body. The page sets host, port and number format; what
    else the reader has (set through the API: regex, prefixes, output...) is kept. Host and port
    both empty remove the reader."""
    host, port = data.get("reader_host", "").strip(), data.get("reader_port", "").strip()
    if not host and not port:
        return {"card_reader": None}
    found, _ = printers.for_names([name])
    current = dict(found[name.lower()].card_reader or {})
    return {"card_reader": {**current, "host": host, "port": port,
                            "format": data.get("reader_format", current.get("format", "dec"))}}
