"""/Setup/NetworkSetup: the first-visit wizard. Open until setup completes, then closed for good.

Step 1: network type and its connection settings ("action": "test" checks them); step 2:
continue the trial, or activate online (key + company) or via file; step 3: the first admin's
login and password, verified against the chosen directory. The final post does all three at
once (commands.setup.complete_setup) and logs the new admin in.

Until then the server has no administrator, so every use of the wizard — its page, the
connection test, the final post — needs the one-time setup code printed on the server's
console at its first start (adapters.setup_code): who can reach the port is not yet somebody.
"""
from __future__ import annotations

from typing import Callable, Protocol

import falcon
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from adapters.directory import AttributeMap, LdapConfig, LdapConfigError
from adapters.licence_keys import HostIdentity
from adapters.sessions import CSRF_COOKIE, SESSION_COOKIE, SessionSigner, same_token
from api.errors import InvalidInput, load
from api.openapi import Operation
from api.transport import is_https
from api.console.render import Renderer
from api.pages import form_csrf, is_form, is_json
from commands.setup import (
    LICENCE_MODES, NETWORK_TYPES, CheckDirectoryConnection, CompleteSetup, SetupClosed, SetupRefused, SetupRequest,
)
from domain.users import ROLE_ADMIN


class SetupCodeCheck(Protocol):
    def matches(self, offered: object) -> bool: ...

    def remove(self) -> None: ...


SETUP_CODE_HELP = ("Enter the setup code the server printed on its console when it first started; it is also in "
                   "the file setup-code of its data directory (readable by the server's account only).")


class SetupSchema(Schema):
    setup_code = fields.String(load_default="", validate=validate.Length(0, 200))
    action = fields.String(load_default="complete", validate=validate.OneOf(("test", "complete")),
                           metadata={"description": "the HTML form also sends step1/step2/step3/back1/back2 to move "
                                                    "between its three pages"})
    csrf_token = fields.String(load_default="")
    network_type = fields.String(required=True, validate=validate.OneOf(NETWORK_TYPES))
    ldap_host = fields.String(load_default="", validate=validate.Length(0, 255))
    ldap_port = fields.Integer(load_default=0, validate=validate.Range(0, 65535))
    ldap_kind = fields.String(load_default="openldap", validate=validate.OneOf(("openldap", "ad")))
    ldap_security = fields.String(load_default="none", validate=validate.OneOf(("none", "ldaps", "starttls")))
    ldap_ca_file = fields.String(load_default="", validate=validate.Length(0, 1024))
    ldap_base_dns = fields.String(load_default="", validate=validate.Length(0, 4000))  # one per line or ";"
    ldap_bind_dn = fields.String(load_default="", validate=validate.Length(0, 1024))
    ldap_bind_password = fields.String(load_default="", validate=validate.Length(0, 1024))
    ldap_group_dn = fields.String(load_default="", validate=validate.Length(0, 1024))
    ldap_user_filter = fields.String(load_default="", validate=validate.Length(0, 2000))
    ldap_card_attribute = fields.String(load_default="", validate=validate.Length(0, 64))
    ldap_pin_attribute = fields.String(load_default="", validate=validate.Length(0, 64))
    licence_mode = fields.String(load_default="trial", validate=validate.OneOf(LICENCE_MODES))
    key = fields.String(load_default="", validate=validate.Length(0, 2000))
    company = fields.String(load_default="", validate=validate.Length(0, 255))
    licence_file = fields.String(load_default="", validate=validate.Length(0, 100_000))
    admin_login = fields.String(load_default="", validate=validate.Length(0, 255))
    admin_password = fields.String(load_default="", validate=validate.Length(0, 1024))

    @validates_schema(skip_on_field_errors=False)
    def _each_step_complete(self, data: dict, **_: object) -> None:
        errors: dict[str, list[str]] = {}
        if data.get("network_type") == "ldap":
            for name in ("ldap_host", "ldap_base_dns"):
                if not data.get(name, "").strip():
                    errors[name] = ["required for an LDAP or Active Directory network"]
        if data.get("action") == "complete":
            if data.get("licence_mode") in ("online", "file") and not data.get("company", "").strip():
                errors["company"] = ["required to activate a licence"]
            if data.get("licence_mode") == "online" and not data.get("key", "").strip():
                errors["key"] = ["required to activate online"]
            if data.get("licence_mode") == "file" and not data.get("licence_file", "").strip():
                errors["licence_file"] = ["required to activate via file: the licence file's contents"]
            for name in ("admin_login", "admin_password"):
                if not data.get(name):
                    errors[name] = ["required: the first administrator"]
        if errors:
            raise ValidationError(errors)


def _request(data: dict) -> SetupRequest:
    ldap = None
    if data["network_type"] == "ldap":
        bases = tuple(b.strip() for b in data["ldap_base_dns"].replace(";", "\n").splitlines() if b.strip())
        kind = data["ldap_kind"]
        mapped = AttributeMap.for_kind(kind)
        attributes = AttributeMap(full_name=mapped.full_name, email=mapped.email, department=mapped.department,
                                  card=data["ldap_card_attribute"], pin=data["ldap_pin_attribute"])
        try:
            ldap = LdapConfig(host=data["ldap_host"].strip(), port=data["ldap_port"], base_dns=bases,
                              bind_dn=data["ldap_bind_dn"], bind_password=data["ldap_bind_password"], kind=kind,
                              security=data["ldap_security"], ca_file=data["ldap_ca_file"],
                              group_dn=data["ldap_group_dn"].strip(), user_filter=data["ldap_user_filter"].strip(),
                              attributes=attributes)
        except LdapConfigError as exc:
            raise InvalidInput({f"ldap_{k}": [v] for k, v in exc.problems.items()}) from None
    return SetupRequest(network_type=data["network_type"], ldap=ldap, licence_mode=data["licence_mode"],
                        key=data["key"].strip(), company=data["company"].strip(), licence_file=data["licence_file"],
                        admin_login=data["admin_login"].strip(), admin_password=data["admin_password"])


# The wizard's three pages and the fields each one asks for.
STEP_FIELDS = {
    1: ("network_type", "ldap_host", "ldap_port", "ldap_kind", "ldap_security", "ldap_ca_file", "ldap_base_dns",
        "ldap_bind_dn", "ldap_bind_password", "ldap_group_dn", "ldap_user_filter", "ldap_card_attribute",
        "ldap_pin_attribute"),
    2: ("licence_mode", "key", "company", "licence_file"),
    3: ("admin_login", "admin_password"),
}


class NetworkSetupResource:
    public = True
    openapi = {
        "get": Operation("The setup wizard (HTML), until setup is complete; ?setup_code= the one-time code "
                         "printed at the first start",
                         responses={303: "A browser, once setup is complete: to the login page",
                                    403: "Setup code missing or wrong", 410: "Setup is complete"}),
        "post": Operation("Setup wizard: test the directory (action=test) or complete setup; closed for good "
                          "afterwards. Needs setup_code, the one-time code printed at the first start",
                          body=SetupSchema,
                          responses={200: "Connection test result", 201: "Set up",
                                     303: "Form: set up, on to the dashboard",
                                     403: "Setup code missing or wrong, or CSRF",
                                     410: "Setup is complete", 415: "Neither JSON nor a form"}),
    }

    def __init__(self, is_set_up: Callable[[], bool], check_connection: CheckDirectoryConnection,
                 complete_setup: CompleteSetup, sessions: SessionSigner, host: HostIdentity,
                 setup_code: SetupCodeCheck, renderer: Renderer | None = None) -> None:
        self.renderer = renderer or Renderer()
        self.is_set_up = is_set_up
        self.setup_code = setup_code
        self.check_connection = check_connection
        self.complete_setup = complete_setup
        self.sessions = sessions
        self.host = host  # licence files must be made for this host and MAC

    def _closed(self) -> None:
        if self.is_set_up():
            raise falcon.HTTPGone(title="Setup is complete",
                                  description="This server is set up; the wizard cannot be used again.")

    def _refuse_code(self, offered: object) -> falcon.HTTPForbidden:
        title = "Setup code required" if not offered else "Setup code wrong"
        return falcon.HTTPForbidden(title=title, description=SETUP_CODE_HELP)

    def _wizard(self, req: falcon.Request, resp: falcon.Response, code: str, status: str = falcon.HTTP_200,
                message: str = "", ok: bool = False, errors: dict | None = None, entered: dict | None = None,
                step: int = 1) -> None:
        entered = entered or {}
        errors = errors or {}
        if errors:  # show the first step that has something wrong
            step = min((s for s, names in STEP_FIELDS.items() for name in errors if name in names), default=step)

        def v(name: str, default: str = "") -> str:
            value = entered.get(name, default)
            return value if isinstance(value, str) else default

        # The other steps' answers ride along as hidden fields (never the admin's password).
        carried = [(k, val) for s, names in STEP_FIELDS.items() if s != step for k in names
                   if k != "admin_password" and isinstance(val := entered.get(k), str) and val]
        self.renderer.page(resp, "setup.html", None, status=status, title=f"PageLedger setup, step {step} of 3",
                           ask_code=False, form_csrf=form_csrf(req, resp), setup_code=code, host=self.host.host,
                           mac=self.host.mac, message=message, ok=ok, errors=errors, v=v, step=step,
                           carried=carried)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        browser = req.client_prefers((falcon.MEDIA_JSON, falcon.MEDIA_HTML)) == falcon.MEDIA_HTML
        if browser and self.is_set_up():
            raise falcon.HTTPSeeOther("/Authentication/Login")  # done: the console's front door
        self._closed()
        code = req.get_param("setup_code") or ""
        if not self.setup_code.matches(code):
            refusal = self._refuse_code(code)
            if not browser:
                raise refusal
            # a browser gets a form asking for the code
            self.renderer.page(resp, "setup.html", None, status=falcon.HTTP_403, title="PageLedger setup",
                               ask_code=True, message=f"{refusal.title}. {SETUP_CODE_HELP}", ok=False, errors={})
            return
        self._wizard(req, resp, code.strip())

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._closed()
        form = is_form(req)
        if not form and not is_json(req):
            raise falcon.HTTPUnsupportedMediaType(title="Send JSON or a form")
        media = req.get_media(default_when_empty={}) or {}
        offered = media.get("setup_code", "") if isinstance(media, dict) else ""
        if not self.setup_code.matches(offered):  # before anything is checked, connected or written
            raise self._refuse_code(offered)
        if form:
            return self._post_form(req, resp, media, str(offered).strip())
        data = load(SetupSchema(), media)
        request = _request(data)
        try:
            if data["action"] == "test":
                message = self.check_connection(request)
                resp.media = {"ok": True, "message": message}
                return
            installation = self.complete_setup(request)
        except SetupRefused as exc:
            raise InvalidInput(exc.errors) from None
        except SetupClosed:
            self._closed()
            raise
        self.setup_code.remove()  # used up: the wizard is closed now anyway
        cookie, session = self.sessions.issue(installation.admin, ROLE_ADMIN)
        resp.set_cookie(SESSION_COOKIE, cookie, secure=is_https(req), http_only=True, same_site="Strict", path="/",
                        max_age=self.sessions.lifetime)
        resp.status = falcon.HTTP_201
        resp.media = {"setup": "complete", "admin": installation.admin, "csrf_token": session.csrf}

    def _post_form(self, req: falcon.Request, resp: falcon.Response, media: dict, code: str) -> None:
        """The wizard's pages: errors beside what was entered, success on to the dashboard."""
        if not same_token(media.get("csrf_token"), req.cookies.get(CSRF_COOKIE)):
            raise falcon.HTTPForbidden(title="CSRF token missing or wrong", description="Reload the setup page.")
        entered = {k: v for k, v in media.items() if isinstance(v, str) and k != "admin_password"}
        action = media.get("action", "complete")
        try:
            if action in ("step1", "back1", "back2"):  # back: nothing to check
                return self._wizard(req, resp, code, entered=entered, step=2 if action == "back2" else 1)
            if action == "step2":  # step 1 answered: check it (without connecting), on to the licence
                _request(load(SetupSchema(), {**media, "action": "test"}))
                return self._wizard(req, resp, code, entered=entered, step=2)
            if action == "step3":  # the licence answered: check what it needs, on to the first admin
                try:
                    load(SetupSchema(), {**media, "action": "complete"})
                except InvalidInput as exc:
                    left = {k: m for k, m in exc.field_errors.items() if k not in STEP_FIELDS[3]}
                    if left:
                        raise InvalidInput(left) from None
                return self._wizard(req, resp, code, entered=entered, step=3)
            data = load(SetupSchema(), media)
            request = _request(data)
            if data["action"] == "test":
                message = self.check_connection(request)
                return self._wizard(req, resp, code, message=message, ok=True, entered=entered)
            installation = self.complete_setup(request)
        except InvalidInput as exc:
            return self._wizard(req, resp, code, falcon.HTTP_400, errors=exc.field_errors, entered=entered)
        except SetupRefused as exc:
            return self._wizard(req, resp, code, falcon.HTTP_400, errors=exc.errors, entered=entered)
        except SetupClosed:
            self._closed()
            raise
        self.setup_code.remove()
        cookie, _ = self.sessions.issue(installation.admin, ROLE_ADMIN)
        resp.set_cookie(SESSION_COOKIE, cookie, secure=is_https(req), http_only=True, same_site="Strict", path="/",
                        max_age=self.sessions.lifetime)
        raise falcon.HTTPSeeOther("/")
