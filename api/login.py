"""/Authentication/Login and /Logout: web sessions against the configured directory.

JSON clients post {"login", "password"} and get the session cookie plus its CSRF token; the
HTML form posts the same fields with the pre-login CSRF token (double submit: the cookie and
the hidden field must match), so another site cannot log a browser in as someone else.
"""
from __future__ import annotations

import falcon
from marshmallow import Schema, fields, validate

from api.errors import load
from api.pages import e, form_csrf, is_form, is_json, page
from commands.logins import log_in
from domain.logins import BAD_CREDENTIALS, NOT_ALLOWED, THROTTLED
from pageledger.bootstrap import Runtime
from pageledger.sessions import CSRF_COOKIE, SESSION_COOKIE, same_token

_STATUS = {BAD_CREDENTIALS: falcon.HTTP_401, THROTTLED: falcon.HTTP_429, NOT_ALLOWED: falcon.HTTP_503}


class LoginSchema(Schema):
    login = fields.String(required=True, validate=validate.Length(1, 255))
    password = fields.String(required=True, validate=validate.Length(1, 1024))


class FormLoginSchema(LoginSchema):
    csrf_token = fields.String(load_default="")


def _form(csrf: str, message: str = "") -> str:
    notice = f'<p role="alert">{e(message)}</p>' if message else ""
    return page("Log in", f"""{notice}
<form method="post" action="/Authentication/Login">
<input type="hidden" name="csrf_token" value="{e(csrf)}">
<label>Login <input name="login" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form>""")


class LoginResource:
    public = True

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = _form(form_csrf(req, resp))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = is_form(req)
        if not form and not is_json(req):
            raise falcon.HTTPUnsupportedMediaType(title="Send JSON or a form")
        data = load(FormLoginSchema() if form else LoginSchema(), req.get_media(default_when_empty={}) or {})
        if form and not same_token(data.get("csrf_token"), req.cookies.get(CSRF_COOKIE)):
            raise falcon.HTTPForbidden(title="CSRF token missing or wrong", description="Reload the login page.")
        identity = self.runtime.identity
        result = log_in(self.runtime.app, identity.directory(), identity.licensing, identity.throttle,
                        login=data["login"], password=data["password"], remote_addr=req.remote_addr or "",
                        clock=identity.clock)
        if not result.ok:
            resp.status = _STATUS.get(result.outcome, falcon.HTTP_403)
            if result.retry_after:
                resp.set_header("Retry-After", str(result.retry_after))
            if form:
                resp.content_type = falcon.MEDIA_HTML
                resp.text = _form(form_csrf(req, resp), result.message)
            else:
                resp.media = {"title": "Login refused", "outcome": result.outcome, "description": result.message}
            return
        cookie, session = identity.sessions.issue(result.login, result.role)
        resp.set_cookie(SESSION_COOKIE, cookie, secure=True, http_only=True, same_site="Strict", path="/",
                        max_age=identity.sessions.lifetime)
        if form:
            resp.status = falcon.HTTP_303
            resp.location = "/"
        resp.media = {"login": result.login, "role": result.role, "csrf_token": session.csrf}


class LogoutResource:
    public = True

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = self.runtime.identity.sessions.read(req.cookies.get(SESSION_COOKIE))
        if session is not None and not same_token(req.get_header("X-CSRF-Token"), session.csrf):
            raise falcon.HTTPForbidden(title="CSRF token missing or wrong")
        resp.unset_cookie(SESSION_COOKIE, path="/")
        resp.status = falcon.HTTP_204


