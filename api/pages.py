"""The few server-rendered HTML pages (login, setup wizard). Every value is HTML-escaped."""
from __future__ import annotations

import secrets
from html import escape

import falcon

from adapters.sessions import CSRF_COOKIE

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - PageLedger</title></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""


def page(title: str, body_html: str) -> str:
    """`body_html` must already be escaped where it holds data (use `e`)."""
    return _PAGE.format(title=escape(title), body=body_html)


def e(value: object) -> str:
    return escape(str(value), quote=True)


def form_csrf(req: falcon.Request, resp: falcon.Response) -> str:
    """The pre-login double-submit token: a cookie, echoed by the form in a hidden field."""
    token = req.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    resp.set_cookie(CSRF_COOKIE, token, secure=req.scheme == "https", http_only=True, same_site="Strict", path="/", max_age=3600)
    return token


def is_form(req: falcon.Request) -> bool:
    return (req.content_type or "").startswith("application/x-www-form-urlencoded")


def is_json(req: falcon.Request) -> bool:
    return (req.content_type or "").split(";")[0].strip() == "application/json"
