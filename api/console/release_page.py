"""/release, the release page for a phone: a console page (Jinja2, the console's CSP with no
inline script, the session's CSRF token in its form) that lists the caller's own held jobs with
pages and cost, and releases the ticked ones to their queue or another printer of its group (the
printer in `?printer=`, e.g. from a label on the printer, is chosen first), or deletes them.

/release/login is its own login page: a login and password (LogIn, as /Authentication/Login), or
a card number and PIN (LogInWithCard: the card and PIN an admin set on Users), each throttled and
audited; a refusal is said beside the form. The same query (api.release.held_jobs_of), handlers
(ReleaseJobs, DeleteJobs through api.release.release_or_delete) and targets
(api.console.secure_print.release_targets) as Secure Print and /api/v1/held-jobs."""
from __future__ import annotations

import re
from urllib.parse import urlencode

import falcon
from marshmallow import Schema, fields, validate

from adapters.sessions import CSRF_COOKIE, SessionSigner, same_token
from api.client_address import ClientAddress
from api.console.forms import form
from api.console.render import Renderer
from api.console.secure_print import HeldJobsPage, release_targets
from api.errors import InvalidInput, load
from api.login import REFUSED_STATUS, LoginSchema, start_session
from api.openapi import Operation
from api.pages import form_csrf
from api.release import caller_of, held_jobs_of
from commands.job_reports import NAME
from commands.logins import LogIn, LogInWithCard, LoginResult
from commands.release import Caller
from domain.users import CARD_MAX_LENGTH, PIN_MAX_LENGTH, PIN_MIN_LENGTH

MAX_SHOWN = 200
DONE = {"released": "Released: collect the jobs at the printer.", "deleted": "Deleted."}
LOGIN_PATH = "/release/login"


def _printer_param(value: object) -> str:
    """The printer a phone came from (`?printer=`), if it is a printer name; else ""."""
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        return ""
    return value if re.match(NAME, value) else ""


class CardLoginSchema(Schema):
    card = fields.String(required=True, validate=[
        validate.Length(1, CARD_MAX_LENGTH),
        validate.Regexp(r"^[0-9A-Za-z]+\Z", error="letters and digits only, as printed on the card")])
    pin = fields.String(required=True, validate=validate.Regexp(
        rf"^[0-9]{{{PIN_MIN_LENGTH},{PIN_MAX_LENGTH}}}\Z", error=f"{PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} digits"))


class ReleaseLoginPage:
    public = True
    page = True
    openapi = {"get": Operation("The release page's login (HTML): a login and password, or a card number and PIN",
                                responses={200: "The page"}),
               "post": Operation("Log in for /release (form with the pre-login csrf_token): method=password with "
                                 "login and password, or method=card with card and pin",
                                 responses={303: "Logged in: to /release", 400: "A field missing or malformed, "
                                            "said beside it", 401: "Wrong login and password, or card and PIN",
                                            403: "CSRF token missing or wrong, inactive, or no seat",
                                            429: "Throttled (Retry-After)"})}

    def __init__(self, renderer: Renderer, log_in: LogIn, log_in_with_card: LogInWithCard, sessions: SessionSigner,
                 client_address: ClientAddress) -> None:
        self.renderer = renderer
        self.log_in = log_in
        self.log_in_with_card = log_in_with_card
        self.sessions = sessions
        self.client_address = client_address

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str = falcon.HTTP_200, method: str = "",
              message: str = "", errors: dict | None = None, entered: dict | None = None) -> None:
        printer = _printer_param(req.get_param("printer") or (entered or {}).get("printer"))
        self.renderer.page(resp, "release_login.html", None, status=status, title="Release your print jobs",
                           form_csrf=form_csrf(req, resp), method=method, message=message, errors=errors or {},
                           entered=entered or {}, printer=printer)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._show(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        posted = form(req)
        method = posted.get("method") if posted.get("method") in ("password", "card") else "password"
        entered = {k: posted.get(k, "") for k in ("login", "card", "printer") if isinstance(posted.get(k, ""), str)}
        if not same_token(posted.get("csrf_token"), req.cookies.get(CSRF_COOKIE)):
            raise falcon.HTTPForbidden(title="CSRF token missing or wrong", description="Reload the page.")
        fields_ = ("login", "password") if method == "password" else ("card", "pin")
        try:
            data = load(LoginSchema() if method == "password" else CardLoginSchema(),
                        {k: posted[k] for k in fields_ if posted.get(k)})
        except InvalidInput as exc:
            return self._show(req, resp, falcon.HTTP_400, method, "", exc.field_errors, entered)
        client = self.client_address(req.remote_addr or "", req.get_header("X-Forwarded-For"))
        if method == "password":
            result = self.log_in(login=data["login"], password=data["password"], remote_addr=client)
        else:
            result = self.log_in_with_card(card=data["card"], pin=data["pin"], remote_addr=client)
        if not result.ok:
            return self._refused(req, resp, result, method, entered)
        start_session(self.sessions, req, resp, result)
        printer = _printer_param(entered.get("printer"))
        raise falcon.HTTPSeeOther("/release" + ("?" + urlencode({"printer": printer}) if printer else ""))

    def _refused(self, req: falcon.Request, resp: falcon.Response, result: LoginResult, method: str,
                 entered: dict) -> None:
        if result.retry_after:
            resp.set_header("Retry-After", str(result.retry_after))
        self._show(req, resp, REFUSED_STATUS.get(result.outcome, falcon.HTTP_403), method, result.message, {},
                   entered)


class ReleasePage(HeldJobsPage):
    login_page = LOGIN_PATH
    openapi = {"get": Operation("The release page for a phone (HTML): your held jobs with pages and cost",
                                responses={200: "The page", 303: "To /release/login"}),
               "post": Operation("Release or delete the ticked held jobs (form with csrf_token): action=release|"
                                 "delete, job=... (repeated), printer (optional, of the queue's group), code",
                                 responses={303: "Done: back to the list", 400: "Refused (not your job, a wrong "
                                            "code, a printer outside the group): shown beside the form",
                                            403: "CSRF token missing or wrong", 429: "Too many wrong codes"})}

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str = falcon.HTTP_200,
              errors: dict | None = None, picked: tuple[str, ...] = (), chosen: str = "") -> None:
        me = caller_of(req)
        # My jobs, whatever my role: an admin releases others' jobs on Secure Print.
        jobs = held_jobs_of(self.reader, Caller(me.login, admin=False, address=me.address), limit=MAX_SHOWN)
        here = chosen or _printer_param(req.get_param("printer"))
        targets = release_targets(self.reader, self.printers, jobs, (here,) if here else ())
        if here and here not in targets and here not in {j.printer for j in jobs}:
            here = ""
        self.renderer.page(resp, "release.html", req, status=status, title="Release your print jobs", jobs=jobs,
                           targets=targets, chosen_printer=here, errors=errors or {}, picked=set(picked),
                           total_pages=sum(j.pages * j.copies for j in jobs), total_cost=sum(j.cost for j in jobs),
                           notice=DONE.get(req.get_param("done") or "", ""))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        choice = self._release_or_delete(req, resp)
        if choice is None:
            return
        query = {"done": "released" if choice.action == "release" else "deleted"}
        if _printer_param(choice.printer):
            query["printer"] = choice.printer
        raise falcon.HTTPSeeOther("/release?" + urlencode(query))
