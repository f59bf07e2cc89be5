"""Users (/users): list and search, add a local user, set Active/Inactive, change the role, set
or clear a card number, reset a PIN — the same handlers as /api/v1/users (commands.users) read
with the same functions (api.users: card_change and set_card, pin_change and reset_pin), so a
page refuses what the API refuses, with the same words beside the field. Admins change; auditors
look. A generated PIN is shown once, on the page the reset answers with (never in a URL)."""
from __future__ import annotations

from uuid import UUID

import falcon
import sqlalchemy as sa

from api.console.forms import Progress, caught_up, form
from api.console.render import ADMINS, READERS, Renderer
from api.errors import InvalidInput, RefusedChange, load
from api.openapi import Operation
from api.users import ActiveSchema, LocalUserSchema, RoleSchema, reset_pin, set_card
from commands.users import AddLocalUser, ChangeRole, LoginTaken, NoSuchUser, ResetPin, SetCard, SetUserActive
from domain.users import PIN_MAX_LENGTH, PIN_MIN_LENGTH, ROLES, UserError
from projections.users import list_users

SEARCH_MAX = 100


def _search(users: list, text: str) -> list:
    needle = text.strip().lower()[:SEARCH_MAX]
    if not needle:
        return users
    return [u for u in users if needle in u.login.lower() or needle in u.full_name.lower()
            or needle in u.email.lower() or needle in u.department.lower()]


class UsersPage:
    page = True
    form_csrf = True
    roles = READERS
    method_roles = {"post": ADMINS}
    openapi = {"get": Operation("Users (HTML): list and search (?q=)", responses={200: "The page",
                                                                               303: "To the login page"}),
               "post": Operation("Add a local user (HTML form with csrf_token)",
                                 responses={303: "Added: back to the list", 400: "Bad fields, shown beside them",
                                            409: "The login exists, or users come from a directory"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, add_local_user: AddLocalUser,
                 progress: Progress) -> None:
        self.progress = progress
        self.renderer = renderer
        self.reader = reader
        self.add_local_user = add_local_user
        self.schema = LocalUserSchema()

    def _show(self, req: falcon.Request, resp: falcon.Response, status: str = falcon.HTTP_200,
              errors: dict | None = None, entered: dict | None = None, notice: str = "",
              failed: tuple[str, str] = ("", "")) -> None:
        query = req.get_param("q") or ""
        with self.reader.connect() as conn:
            users = _search(list_users(conn), query)
        self.renderer.page(resp, "users.html", req, status=status, title="Users", users=users, q=query[:SEARCH_MAX],
                           roles=ROLES, pin_lengths=(PIN_MIN_LENGTH, PIN_MAX_LENGTH), errors=errors or {},
                           entered=entered or {}, failed=failed, notice=notice or
                           {"added": "User added.", "saved": "Saved."}.get(req.get_param("done") or "", ""))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._show(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = form(req)
        entered = {k: v for k, v in data.items() if k in ("login", "full_name", "email", "department", "role")}
        try:
            loaded = load(self.schema, {k: v for k, v in data.items() if k != "csrf_token"})
            self.add_local_user(login=loaded["login"], password=loaded["password"], role=loaded["role"],
                                profile=self.schema.profile(loaded))
        except InvalidInput as exc:
            return self._show(req, resp, falcon.HTTP_400, exc.field_errors, entered)
        except LoginTaken as exc:
            return self._show(req, resp, falcon.HTTP_409, {"login": [str(exc)]}, entered)
        except UserError as exc:
            return self._show(req, resp, falcon.HTTP_409, {"_schema": [str(exc)]}, entered)
        caught_up(self.progress, ("users",))
        raise falcon.HTTPSeeOther("/users?done=added")


CHANGES = ("active", "role", "card", "pin")


class UserChangePage:
    """POST /users/{user_id}/{change}: `active` (active=true|false), `role` (role=...), `card`
    (card=..., empty clears) or `pin` (pin=..., empty generates one, shown once on the answer)."""

    page = True
    form_csrf = True
    roles = ADMINS
    openapi = {"post": Operation("Set a user Active/Inactive, change their role, set or clear their card "
                                 "number or reset their PIN (HTML form with csrf_token)",
                                 responses={200: "The PIN generated, shown this once", 303: "Saved: back to the list",
                                            400: "Bad fields, shown beside them", 404: "No such user",
                                            409: "Refused (the last active admin; a card or PIN another user has)"},
                                 path_patterns={"user_id": r"^[0-9a-fA-F-]{36}$",
                                                "change": r"^(active|role|card|pin)$"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, set_user_active: SetUserActive,
                 change_role: ChangeRole, set_card: SetCard, reset_pin: ResetPin, users_page: UsersPage) -> None:
        self.set_user_active = set_user_active
        self.change_role = change_role
        self.set_card = set_card
        self.reset_pin = reset_pin
        self.users_page = users_page

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: str, change: str) -> None:
        try:
            uid = UUID(user_id)
        except ValueError:
            raise falcon.HTTPNotFound(title="No such user") from None
        data = {k: v for k, v in form(req).items() if k != "csrf_token"}
        if change in ("card", "pin"):
            return self._card_or_pin(req, resp, uid, change, data)
        try:
            if change == "active":
                self.set_user_active(uid, load(ActiveSchema(), data)["active"])
            elif change == "role":
                self.change_role(uid, load(RoleSchema(), data)["role"], by=req.context.principal.author)
            else:
                raise falcon.HTTPNotFound(title="No such change")
        except NoSuchUser:
            raise falcon.HTTPNotFound(title="No such user") from None
        except InvalidInput as exc:
            return self.users_page._show(req, resp, falcon.HTTP_400, exc.field_errors)
        except UserError as exc:
            return self.users_page._show(req, resp, falcon.HTTP_409, {change: [str(exc)]})
        caught_up(self.users_page.progress, ("users",))
        raise falcon.HTTPSeeOther("/users?done=saved")

    def _card_or_pin(self, req: falcon.Request, resp: falcon.Response, uid: UUID, change: str, data: dict) -> None:
        by = req.context.principal.subject
        page = self.users_page
        try:
            if change == "card":
                set_card(self.set_card, uid, data, by)
            else:  # an empty field asks for a generated PIN, as the API's {} does
                result = reset_pin(self.reset_pin, uid, {"pin": data["pin"]} if data.get("pin") else {}, by)
        except InvalidInput as exc:
            entered = {"card": str(data.get("card", ""))[:100]} if change == "card" else {}
            return page._show(req, resp, falcon.HTTP_400, exc.field_errors, entered, failed=(str(uid), change))
        except RefusedChange as exc:
            entered = {"card": str(data.get("card", ""))[:100]} if change == "card" else {}
            return page._show(req, resp, falcon.HTTP_409, exc.field_errors, entered, failed=(str(uid), change))
        caught_up(page.progress, ("users",))
        if change == "pin" and result.generated:
            resp.cache_control = ["no-store"]
            return page._show(req, resp, notice=f"New PIN for {result.login}: {result.generated}. It is shown this "
                                                f"once: give it to them now.")
        raise falcon.HTTPSeeOther("/users?done=saved")
