"""/Authentication/Login and /Logout: web sessions against the configured directory.

JSON clients post {"login", "password"} and get the session cookie plus its CSRF token; the
HTML form posts the same fields with the pre-login CSRF token (double submit: the cookie and
the hidden field must match), so another site cannot log a browser in as someone else.
"""
from __future__ import annotations

import falcon
from marshmallow import Schema, fields, validate

from adapters.sessions import CSRF_COOKIE, SESSION_COOKIE, Session, SessionSigner, same_token
from adapters.session_revocations import SessionRevocations
from api.client_address import ClientAddress
from api.errors import load
from api.openapi import Operation
from api.console.render import Renderer
from api.pages import form_csrf, is_form, is_json
from api.transport import is_https
from api.users import validate_login
from commands.logins import LogIn, LoginResult
from domain.logins import BAD_CREDENTIALS, NOT_ALLOWED, THROTTLED

REFUSED_STATUS = {BAD_CREDENTIALS: falcon.HTTP_401, THROTTLED: falcon.HTTP_429, NOT_ALLOWED: falcon.HTTP_503}


class LoginSchema(Schema):
    login = fields.String(required=True, validate=validate.And(validate.Length(1, 255), validate_login))
    password = fields.String(required=True, validate=validate.Length(1, 1024))


class FormLoginSchema(LoginSchema):
    csrf_token = fields.String(load_default="")


def safe_next(value: object) -> str:
    """Where to go after a form login: a path on this server only (never //host or a scheme)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if len(value) > 2000 or any(ord(c) < 33 or ord(c) == 127 for c in value):
        return "/"
    return value


class LoginResource:
    public = True
    openapi = {
        "get": Operation("The login page (HTML)"),
        "post": Operation("Log in against the configured directory; sets a Secure HttpOnly SameSite=Strict "
                          "session cookie (JSON or form)", body=LoginSchema,
                          responses={200: "Logged in: login, role, csrf_token", 303: "Form login: to /",
                                     401: "Wrong login or password", 403: "Inactive, no seat, or CSRF",
                                     415: "Neither JSON nor a form", 429: "Throttled (Retry-After)"}),
    }

    def __init__(self, log_in: LogIn, sessions: SessionSigner, client_address: ClientAddress | None = None,
                 renderer: Renderer | None = None) -> None:
        self.log_in = log_in
        self.sessions = sessions
        self.renderer = renderer or Renderer()
        self.client_address = client_address or ClientAddress()  # behind trusted proxies, their client

    def _form(self, req: falcon.Request, resp: falcon.Response, message: str = "", status: str = falcon.HTTP_200) -> None:
        self.renderer.page(resp, "login.html", None, status=status, title="Log in", message=message,
                           form_csrf=form_csrf(req, resp), next=safe_next(req.get_param("next")))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._form(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = is_form(req)
        if not form and not is_json(req):
            raise falcon.HTTPUnsupportedMediaType(title="Send JSON or a form")
        data = load(FormLoginSchema() if form else LoginSchema(), req.get_media(default_when_empty={}) or {})
        if form and not same_token(data.get("csrf_token"), req.cookies.get(CSRF_COOKIE)):
            raise falcon.HTTPForbidden(title="CSRF token missing or wrong", description="Reload the login page.")
        client = self.client_address(req.remote_addr or "", req.get_header("X-Forwarded-For"))
        result = self.log_in(login=data["login"], password=data["password"], remote_addr=client)
        if not result.ok:
            resp.status = REFUSED_STATUS.get(result.outcome, falcon.HTTP_403)
            if result.retry_after:
                resp.set_header("Retry-After", str(result.retry_after))
            if form:
                self._form(req, resp, result.message, resp.status)
            else:
                resp.media = {"title": "Login refused", "outcome": result.outcome, "description": result.message}
            return
        session = start_session(self.sessions, req, resp, result)
        if form:
            resp.status = falcon.HTTP_303
            resp.location = safe_next(req.get_param("next"))
        resp.media = {"login": result.login, "role": result.role, "csrf_token": session.csrf}


def start_session(sessions: SessionSigner, req: falcon.Request, resp: falcon.Response, result: LoginResult) -> Session:
    """A successful login (password, or card and PIN on /release) gets its session cookie:
    Secure exactly when served over HTTPS, HttpOnly, SameSite=Strict."""
    cookie, session = sessions.issue(result.login, result.role)
    resp.set_cookie(SESSION_COOKIE, cookie, secure=is_https(req), http_only=True, same_site="Strict", path="/",
                    max_age=sessions.lifetime)
    return session


class LogoutResource:
    public = True
    openapi = {"post": Operation("Log out: the session ends on the server and its cookie is cleared "
                                 "(X-CSRF-Token of the session, or the form's csrf_token)",
                                 responses={204: "Logged out", 303: "Form logout: to the login page",
                                            403: "CSRF token missing or wrong"})}

    def __init__(self, sessions: SessionSigner, revocations: SessionRevocations) -> None:
        self.sessions = sessions
        self.revocations = revocations

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = self.sessions.read(req.cookies.get(SESSION_COOKIE))
        if session is not None:
            token = req.get_header("X-CSRF-Token") or _form_token(req)
            if not same_token(token, session.csrf):
                raise falcon.HTTPForbidden(title="CSRF token missing or wrong")
            self.revocations.revoke(session.session_id, session.expires)  # a copy of the cookie ends too
        resp.unset_cookie(SESSION_COOKIE, path="/")
        if is_form(req):
            resp.status = falcon.HTTP_303
            resp.location = "/Authentication/Login"
            return
        resp.status = falcon.HTTP_204


def _form_token(req: falcon.Request) -> str:
    """The console's logout button posts a form with the session's CSRF token."""
    if not is_form(req):
        return ""
    media = req.get_media(default_when_empty={}) or {}
    value = media.get("csrf_token", "") if isinstance(media, dict) else ""
    return value if isinstance(value, str) else ""
