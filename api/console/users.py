"""Users (/users): list and search, add a local user, set Active/Inactive, change the role — the
same handlers as /api/v1/users (commands.users) with the same schemas (api.users), so a page
refuses what the API refuses, with the same words beside the field. Admins change; auditors look.
Card numbers and PINs come from the directory sync today; their reset waits for its command."""
from __future__ import annotations

from uuid import UUID

import falcon
import sqlalchemy as sa

from api.console.forms import Progress, caught_up, form
from api.console.render import ADMINS, READERS, Renderer
from api.errors import InvalidInput, load
from api.openapi import Operation
from api.users import ActiveSchema, LocalUserSchema, RoleSchema
from commands.users import AddLocalUser, ChangeRole, LoginTaken, NoSuchUser, SetUserActive
from domain.users import ROLES, UserError
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
              errors: dict | None = None, entered: dict | None = None, notice: str = "") -> None:
        query = req.get_param("q") or ""
        with self.reader.connect() as conn:
            users = _search(list_users(conn), query)
        self.renderer.page(resp, "users.html", req, status=status, title="Users", users=users, q=query[:SEARCH_MAX],
                           roles=ROLES, errors=errors or {}, entered=entered or {}, notice=notice or
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


class UserChangePage:
    """POST /users/{user_id}/{change}: `active` (active=true|false) or `role` (role=...)."""

    page = True
    form_csrf = True
    roles = ADMINS
    openapi = {"post": Operation("Set a user Active/Inactive or change their role (HTML form with csrf_token)",
                                 responses={303: "Saved: back to the list", 400: "Bad fields", 404: "No such user",
                                            409: "Refused (the last active admin)"},
                                 path_patterns={"user_id": r"^[0-9a-fA-F-]{36}$", "change": r"^(active|role)$"})}

    def __init__(self, renderer: Renderer, reader: sa.Engine, set_user_active: SetUserActive,
                 change_role: ChangeRole, users_page: UsersPage) -> None:
        self.set_user_active = set_user_active
        self.change_role = change_role
        self.users_page = users_page

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: str, change: str) -> None:
        try:
            uid = UUID(user_id)
        except ValueError:
            raise falcon.HTTPNotFound(title="No such user") from None
        data = {k: v for k, v in form(req).items() if k != "csrf_token"}
        try:
            if change == "active":
                self.set_user_active(uid, load(ActiveSchema(), data)["active"])
            elif change == "role":
                self.change_role(uid, load(RoleSchema(), data)["role"])
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
