"""Helpers of the pre-login forms (login, the setup wizard, /release/login) and of form bodies."""
from __future__ import annotations

import secrets

import falcon

from adapters.sessions import CSRF_COOKIE


def form_csrf(req: falcon.Request, resp: falcon.Response) -> str:
    """The pre-login double-submit token: a cookie, echoed by the form in a hidden field."""
    token = req.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    resp.set_cookie(CSRF_COOKIE, token, secure=req.scheme == "https", http_only=True, same_site="Strict", path="/", max_age=3600)
    return token


def is_form(req: falcon.Request) -> bool:
    return (req.content_type or "").startswith("application/x-www-form-urlencoded")


def is_json(req: falcon.Request) -> bool:
    return (req.content_type or "").split(";")[0].strip() == "application/json"
