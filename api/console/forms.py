"""Console forms: plain HTML forms that post `application/x-www-form-urlencoded`, each with the
session's CSRF token in a hidden `csrf_token` field (JavaScript sends it as X-CSRF-Token).

api.auth lets a form through to here only for a resource marked `form_csrf = True`, with the
token it expects; this middleware runs after RequestLimits has bounded the body, parses the
form once (Falcon keeps it for the resource) and refuses a missing or wrong token with 403
before the resource runs. So no console form can change anything without the token.
"""
from __future__ import annotations

import time
from typing import Any, Protocol

import falcon

from adapters.sessions import same_token


class FormCsrf:
    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        expected = getattr(req.context, "csrf_expected", None)
        if expected is None:
            return
        if not same_token(form_field(req, "csrf_token"), expected):
            raise falcon.HTTPForbidden(title="CSRF token missing or wrong",
                                       description="Reload the page and try again.")


def form(req: falcon.Request) -> dict[str, Any]:
    """The posted form as a dict of strings (a repeated field keeps its last value)."""
    media = req.get_media(default_when_empty={}) or {}
    if not isinstance(media, dict):
        return {}
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in media.items() if isinstance(k, str)}


def form_field(req: falcon.Request, name: str) -> str:
    value = form(req).get(name, "")
    return value if isinstance(value, str) else ""


class Progress(Protocol):
    def head(self) -> int: ...

    def positions(self) -> dict[str, int]: ...


def caught_up(progress: Progress, names: tuple[str, ...], seconds: float = 3.0) -> bool:
    """After a change, wait (briefly) until the read models `names` have applied it, so that the
    page the browser is sent to shows it. False if they have not within `seconds` (the page
    then says it may take a moment)."""
    head = progress.head()
    deadline = time.monotonic() + seconds
    while True:
        positions = progress.positions()
        if all(positions.get(n, 0) >= head for n in names):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
