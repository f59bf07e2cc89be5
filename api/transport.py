"""HTTPS for the console, plain HTTP for the agent, and the headers every answer carries.

With an HTTPS listener (pageledger.server), plain HTTP keeps serving what machines use —
the agent's /Services, /healthz, /metrics and bearer-token API calls — and redirects the
rest (browsers) to the same path over HTTPS with 308, which keeps the method. Without one,
plain HTTP serves everything, as before HTTPS existed.

Every answer says: no framing (frame-ancestors and X-Frame-Options), no inline script or
style and nothing from elsewhere (the CSP), no MIME sniffing, no referrer to other sites.
"""
from __future__ import annotations

import re

import falcon

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
MACHINE_PATHS = ("/Services/", "/healthz", "/metrics")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]|[0-9.]{7,15})$")


def is_https(req: falcon.Request) -> bool:
    """Cookies are Secure exactly when this is true."""
    return req.scheme == "https"


class TransportSecurity:
    """Falcon middleware (first in the chain)."""

    def __init__(self, https_port: int | None) -> None:
        self.https_port = https_port

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.https_port is None or is_https(req):
            return
        path = req.path
        if path.startswith(MACHINE_PATHS) or path == "/Services" or req.get_header("Authorization"):
            return
        host = req.host if _HOST.match(req.host or "") else "localhost"
        port = "" if self.https_port == 443 else f":{self.https_port}"
        query = f"?{req.query_string}" if req.query_string else ""
        raise falcon.HTTPPermanentRedirect(f"https://{host}{port}{path}{query}")

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        resp.set_header("Content-Security-Policy", CSP)
        resp.set_header("X-Frame-Options", "DENY")
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "same-origin")
        if (resp.content_type or "").startswith("text/html"):
            resp.set_header("Cache-Control", "no-store")
