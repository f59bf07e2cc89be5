"""/api/v1/users: the users read model, the Active/Inactive switch, a directory sync, a user's
card number and PIN, and local accounts (add, password, role, remove). The schemas here also check the CLI's input
(pageledger.identity_cli), so both edges refuse the same things with the same words."""
from __future__ import annotations

from typing import Any
from uuid import UUID

import falcon
import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate

from adapters.directory import MIN_PASSWORD_LENGTH, DirectoryError
from api.background_runs import RunStateSchema
from api.errors import InvalidInput, RefusedChange, load
from api.openapi import Operation
from commands.users import (
    AddLocalUser, CardTaken, ChangePassword, ChangeRole, LastActiveAdmin, LoginTaken, NoSuchUser, PinReset, PinTaken,
    RemoveUser, ResetPin, SetCard, SetUserActive, SyncUsers,
)
from commands.validation import InvalidRequest
from domain.users import (
    CARD_MAX_LENGTH, PIN_MAX_LENGTH, PIN_MIN_LENGTH, PROFILE_FIELDS, ROLES, User, UserError, card_problem, pin_problem,
)
from projections.users import UserListing, list_users


class ActiveSchema(Schema):
    active = fields.Boolean(required=True)


def validate_login(value: str) -> None:
    """A login as accounts hold it (also what /Authentication/Login accepts: PostgreSQL text
    cannot hold NUL, and no directory has a login with a control character)."""
    if not value.strip():
        raise ValidationError("a login cannot be blank")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError("a login cannot contain control characters")


def _email_or_nothing(value: str) -> None:
    if value:
        validate.Email(error="not an e-mail address")(value)


_PASSWORD = validate.Length(MIN_PASSWORD_LENGTH, 1024, error=f"{MIN_PASSWORD_LENGTH} to 1024 characters")


class PasswordSchema(Schema):
    password = fields.String(required=True, validate=_PASSWORD)


class RoleSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES, error=f"one of {', '.join(ROLES)}"))


class LocalUserSchema(PasswordSchema, RoleSchema):
    """A new local account (login, password, role) and its profile."""

    login = fields.String(required=True, validate=validate.And(validate.Length(1, 255), validate_login))
    full_name = fields.String(load_default="", validate=validate.Length(0, 255))
    email = fields.String(load_default="", validate=validate.And(validate.Length(0, 255), _email_or_nothing))
    department = fields.String(load_default="", validate=validate.Length(0, 255))

    def profile(self, data: dict) -> dict[str, str]:
        return {k: data[k] for k in PROFILE_FIELDS}


def _checked(problem: Any) -> Any:
    def check(value: str) -> None:
        why = problem(value)
        if why:
            raise ValidationError(why)
    return check


class CardSchema(Schema):
    card = fields.String(required=True, validate=_checked(lambda v: card_problem(v.strip(" "))), metadata={
        "description": f"the card number as the reader sends it (letters and digits, at most {CARD_MAX_LENGTH}); "
                       f"\"\" clears it"})


class PinSchema(Schema):
    pin = fields.String(validate=_checked(pin_problem), metadata={
        "description": f"{PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} digits; leave it out to have one generated"})


class PinReplySchema(Schema):
    id = fields.String(required=True)
    generated = fields.Boolean(required=True)
    pin = fields.String(metadata={"description": "the generated PIN, shown this once (only when generated)"})


def card_change(body: Any) -> str:
    """The card number a request sets ("" clears): what PUT /api/v1/users/{id}/card and the
    console's Users page pass to SetCard (InvalidInput names the bad field)."""
    return load(CardSchema(), body)["card"]


def pin_change(body: Any) -> str | None:
    """The PIN a request sets, or None to generate one: what PUT /api/v1/users/{id}/pin and the
    console's Users page pass to ResetPin."""
    return load(PinSchema(), body).get("pin")


def set_card(command: SetCard, uid: UUID, body: Any, by: str) -> tuple[str, bool]:
    """Read the body and set the card: (the card now, whether it changed); 400 naming `card`,
    404, 409 naming `card` (another user's)."""
    card = card_change(body).strip(" ")
    try:
        return card, command(uid, card, by=by)
    except NoSuchUser:
        raise falcon.HTTPNotFound(title="No such user") from None
    except InvalidRequest as exc:
        raise InvalidInput(exc.errors) from None
    except CardTaken as exc:
        raise RefusedChange({"card": [str(exc)]}) from None


def reset_pin(command: ResetPin, uid: UUID, body: Any, by: str) -> PinReset:
    """Read the body and reset the PIN: 400 naming `pin`, 404, 409 naming `pin` (taken)."""
    try:
        return command(uid, pin_change(body), by=by)
    except NoSuchUser:
        raise falcon.HTTPNotFound(title="No such user") from None
    except InvalidRequest as exc:
        raise InvalidInput(exc.errors) from None
    except PinTaken as exc:
        raise RefusedChange({"pin": [str(exc)]}) from None


def user_json(u: UserListing) -> dict[str, Any]:
    return {"id": u.user_id, "source": u.source, "login": u.login, "role": u.role, "active": u.active,
            "full_name": u.full_name, "email": u.email, "department": u.department, "card": u.card,
            "has_pin": u.has_pin}


def _user_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise falcon.HTTPNotFound(title="No such user") from None


def added_user_json(user: User) -> dict[str, Any]:
    return {"id": str(user.id), "source": user.source, "login": user.login, "role": user.role,
            "active": user.active, **{k: user.profile.get(k, "") for k in PROFILE_FIELDS}}


class UserListResource:
    roles = ("admin", "auditor")
    method_roles = {"post": ("admin",)}
    openapi = {"get": Operation("Users (removed accounts left out)"),
               "post": Operation("Add a local account (servers with local accounts, not LDAP); a removed "
                                 "account's login can be added again", body=LocalUserSchema,
                                 responses={201: "Added: the user",
                                            409: "The login exists, or this server's users come from a directory"})}

    def __init__(self, reader: sa.Engine, add_local_user: AddLocalUser) -> None:
        self.reader = reader
        self.add_local_user = add_local_user
        self.schema = LocalUserSchema()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.reader.connect() as conn:
            resp.media = {"users": [user_json(u) for u in list_users(conn)]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        try:
            user = self.add_local_user(login=data["login"], password=data["password"], role=data["role"],
                                       profile=self.schema.profile(data))
        except LoginTaken as exc:
            raise RefusedChange({"login": [str(exc)]}) from None
        except UserError as exc:  # NoLocalAccounts: the server, not a field, refuses
            raise RefusedChange({"_schema": [str(exc)]}) from None
        resp.status = falcon.HTTP_201
        resp.media = added_user_json(user)


class UserResource:
    roles = ("admin",)
    openapi = {"delete": Operation("Remove a local account: it can no longer log in, frees its seat and leaves "
                                   "the users list; its login can be added again",
                                   responses={204: "Removed", 404: "No such user (or removed already)",
                                              409: "A directory's user, or the last active admin"})}

    def __init__(self, remove_user: RemoveUser) -> None:
        self.remove_user = remove_user

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        try:
            self.remove_user(_user_id(user_id))
        except NoSuchUser:
            raise falcon.HTTPNotFound(title="No such user") from None
        except UserError as exc:  # LastActiveAdmin, or a directory's user
            raise RefusedChange({"user_id": [str(exc)]}) from None
        resp.status = falcon.HTTP_204


class UserPasswordResource:
    roles = ("admin",)
    openapi = {"put": Operation("Set a local account's password", body=PasswordSchema,
                                responses={200: "Changed", 404: "No such user",
                                           409: "A directory's user: their password is the directory's"})}

    def __init__(self, change_password: ChangePassword) -> None:
        self.change_password = change_password
        self.schema = PasswordSchema()

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        uid = _user_id(user_id)
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        try:
            self.change_password(uid, data["password"])
        except NoSuchUser:
            raise falcon.HTTPNotFound(title="No such user") from None
        except UserError as exc:
            raise RefusedChange({"password": [str(exc)]}) from None
        resp.media = {"id": user_id, "changed": True}


class UserRoleResource:
    roles = ("admin",)
    openapi = {"put": Operation("Give a user another role", body=RoleSchema,
                                responses={200: "Saved", 404: "No such user",
                                           409: "The last active admin cannot be demoted"})}

    def __init__(self, change_role: ChangeRole) -> None:
        self.change_role = change_role
        self.schema = RoleSchema()

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        uid = _user_id(user_id)
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        try:
            changed = self.change_role(uid, data["role"], by=req.context.principal.author)
        except NoSuchUser:
            raise falcon.HTTPNotFound(title="No such user") from None
        except UserError as exc:  # LastActiveAdmin
            raise RefusedChange({"role": [str(exc)]}) from None
        resp.media = {"id": user_id, "role": data["role"], "changed": changed}


class UserCardResource:
    roles = ("admin",)
    openapi = {"put": Operation("Set a user's card number (any source; \"\" clears it)", body=CardSchema,
                                responses={200: "Saved", 404: "No such user",
                                           409: "Another user holds this card number"})}

    def __init__(self, set_card: SetCard) -> None:
        self.set_card = set_card

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        uid = _user_id(user_id)
        card, changed = set_card(self.set_card, uid, req.get_media(default_when_empty=None) or {},
                                 req.context.principal.subject)
        resp.media = {"id": user_id, "card": card, "changed": changed}


class UserPinResource:
    roles = ("admin",)
    openapi = {"put": Operation("Reset a user's PIN (also their release code on queues whose code is the "
                                "user's PIN): the PIN given, or one generated and answered this once",
                                body=PinSchema, reply=PinReplySchema,
                                responses={200: "Reset (with the generated PIN)", 404: "No such user",
                                           409: "Another user has this PIN"})}

    def __init__(self, reset_pin: ResetPin) -> None:
        self.reset_pin = reset_pin

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        uid = _user_id(user_id)
        result = reset_pin(self.reset_pin, uid, req.get_media(default_when_empty=None) or {},
                           req.context.principal.subject)
        resp.cache_control = ["no-store"]
        resp.media = ({"id": user_id, "generated": True, "pin": result.generated} if result.generated
                      else {"id": user_id, "generated": False})


class UserActiveResource:
    roles = ("admin",)
    openapi = {"put": Operation("Set a user Active or Inactive (Inactive frees their seat)", body=ActiveSchema,
                                responses={200: "Saved", 404: "No such user",
                                           409: "The last active admin cannot be set Inactive"})}

    def __init__(self, set_user_active: SetUserActive) -> None:
        self.set_user_active = set_user_active
        self.schema = ActiveSchema()

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        uid = _user_id(user_id)
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        try:
            changed = self.set_user_active(uid, data["active"])
        except NoSuchUser:
            raise falcon.HTTPNotFound(title="No such user") from None
        except LastActiveAdmin as exc:
            raise RefusedChange({"active": [str(exc)]}) from None
        resp.media = {"id": user_id, "active": data["active"], "changed": changed}


class UserSyncResource:
    roles = ("admin",)
    openapi = {"post": Operation("Import and update users from the directory",
                                 responses={200: "Sync report", 502: "Directory unreachable"})}

    def __init__(self, sync_users: SyncUsers) -> None:
        self.sync_users = sync_users

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            report = self.sync_users()
        except DirectoryError as exc:
            raise falcon.HTTPBadGateway(title="Directory", description=str(exc)) from None
        resp.media = report.as_json()


class SyncRunSchema(RunStateSchema):
    result = fields.Dict(required=True, allow_none=True, metadata={
        "description": "once done: the sync report (imported, updated, deactivated, reactivated, clashes, kept, "
                       "warnings, summary; lists cut at 200 logins) and counts of each"})
