"""Audit (/audit, admins and auditors): the event history, filtered by type and recorded time and
paged by position (keyset: "Next" starts after the last event shown), and the admin-changes log
(who changed what, when, old → new). The same schemas, queries and filters as /api/v1/events and
/api/v1/audit/changes (api.audit.event_filter, admin_changes_of), so a bad filter is named here as
there. `pageledger audit verify` checks the log's seals (docs/audit-privacy.md)."""
from __future__ import annotations

import json
from itertools import islice
from typing import Any
from urllib.parse import urlencode

import falcon

from api.audit import ChangesQuerySchema, EventQuerySchema, admin_changes_of, event_filter
from api.console.jobs import day_query
from api.console.render import READERS, Renderer
from api.errors import InvalidInput, load
from api.openapi import Operation
from projections.admin_changes import AREAS
from projections.audit import Audit
from projections.event_history import EventHistory

PAGE_SIZE = 50
CHANGES_SHOWN = 200


class AuditQueryDoc(EventQuerySchema, ChangesQuerySchema):
    """The event filters (type, from, to, cursor) and the changes' area."""


class AuditPage:
    page = True
    roles = READERS
    openapi = {"get": Operation("Audit (HTML): the event history (type, from, to; keyset paging by cursor) and the "
                                "admin-changes log (area)", query=AuditQueryDoc,
                                responses={200: "The page", 303: "To login", 400: "Bad filters, named beside them"})}

    def __init__(self, renderer: Renderer, history: EventHistory, audit: Audit) -> None:
        self.renderer = renderer
        self.history = history
        self.audit = audit

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = day_query(req)
        errors: dict[str, list[str]] = {}
        picked = {k: v for k, v in given.items() if k in ("type", "from", "to", "cursor")}
        try:
            q = load(EventQuerySchema(), {**picked, "limit": str(PAGE_SIZE)})
        except InvalidInput as exc:
            errors.update(exc.field_errors)
            q = load(EventQuerySchema(), {"limit": str(PAGE_SIZE)})
        events, cursor = self.history.page(event_filter(q))
        period = {k: v for k, v in given.items() if k in ("from", "to", "area")}
        try:
            cq = load(ChangesQuerySchema(), period)
        except InvalidInput as exc:
            errors.update(exc.field_errors)
            cq = {}
        changes = list(islice(admin_changes_of(self.audit, cq), CHANGES_SHOWN + 1))
        shown = {k: v for k, v in req.params.items() if isinstance(v, str) and v.strip() and k != "cursor"}
        next_url = f"/audit?{urlencode({**shown, 'cursor': cursor})}" if cursor and events else ""
        self.renderer.page(resp, "audit.html", req, status=falcon.HTTP_400 if errors else falcon.HTTP_200,
                           title="Audit", events=events, changes=changes[:CHANGES_SHOWN],
                           more_changes=len(changes) > CHANGES_SHOWN, errors=errors, given=shown,
                           given_to=shown.get("to", "")[:10], given_from=shown.get("from", "")[:10],
                           areas=sorted(set(AREAS.values())), next_url=next_url, first=not q.get("cursor"),
                           show=_show)


def _show(value: Any) -> str:
    """An event field's or a change's value as text (the template escapes it)."""
    if value is None:
        return "—"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)[:500]
    return str(value)[:500]
