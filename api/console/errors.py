"""Errors on console pages answer in HTML: a page without a session sends the browser to the
login page (and back afterwards), a refused role or a missing thing shows a page saying so.
Everything else (the JSON API) keeps its JSON errors."""
from __future__ import annotations

from urllib.parse import quote

import falcon

from api.console.render import Renderer


LOGIN_PAGE = "/Authentication/Login"  # a page may name its own (`login_page`: /release has its phone login)


def is_console(req: falcon.Request) -> bool:
    return bool(getattr(req.context, "console", False))


class ConsoleMarker:
    """Middleware before TokenAuth: marks requests for a console page (resources with `page = True`)."""

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict) -> None:
        if getattr(resource, "page", False):
            req.context.console = True
            req.context.login_page = getattr(resource, "login_page", LOGIN_PAGE)


class HtmlErrors:
    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def __call__(self, req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict) -> None:
        if not is_console(req) or isinstance(ex, (falcon.HTTPStatus,)):
            raise ex
        if isinstance(ex, falcon.HTTPUnauthorized):
            target = req.relative_uri if req.method == "GET" else "/"
            resp.status = falcon.HTTP_303
            login_page = getattr(req.context, "login_page", LOGIN_PAGE)
            if login_page == LOGIN_PAGE:
                resp.location = login_page + "?next=" + quote(target, safe="")
            else:  # a page's own login page goes back to it, with the page's query (e.g. /release?printer=)
                query = req.query_string if req.method == "GET" else ""
                resp.location = login_page + ("?" + query if query else "")
            return
        for key, value in (ex.headers or {}).items():
            resp.set_header(key, value)
        self.renderer.page(resp, "message.html", req, status=ex.status, title=ex.title or "Error",
                           message=ex.description or "", alert=True, link=("Back to the dashboard", "/"))
