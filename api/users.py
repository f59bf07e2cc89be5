"""/api/v1/users: the users read model, the Active/Inactive switch, a directory sync, and
local accounts (add, password, role, remove). The schemas here also check the CLI's input
(pageledger.identity_cli), so both edges refuse the same things with the same words."""
from __future__ import annotations

from typing import Any
from uuid import UUID

import falcon
import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate

from adapters.directory import MIN_PASSWORD_LENGTH, DirectoryError
from api.errors import RefusedChange, load
from api.openapi import Operation
from commands.users import LastActiveAdmin, NoSuchUser, SetUserActive, SyncReport, SyncUsers
from domain.users import PROFILE_FIELDS, ROLES
from projections.users import UserListing, list_users


class ActiveSchema(Schema):
    active = fields.Boolean(required=True)


def _login(value: str) -> None:
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

    login = fields.String(required=True, validate=validate.And(validate.Length(1, 255), _login))
    full_name = fields.String(load_default="", validate=validate.Length(0, 255))
    email = fields.String(load_default="", validate=validate.And(validate.Length(0, 255), _email_or_nothing))
    department = fields.String(load_default="", validate=validate.Length(0, 255))

    def profile(self, data: dict) -> dict[str, str]:
        return {k: data[k] for k in PROFILE_FIELDS}


def user_json(u: UserListing) -> dict[str, Any]:
    return {"id": u.user_id, "source": u.source, "login": u.login, "role": u.role, "active": u.active,
            "full_name": u.full_name, "email": u.email, "department": u.department, "card": u.card,
            "has_pin": u.has_pin}


def sync_report_json(report: SyncReport) -> dict[str, Any]:
    return {"imported": report.imported, "updated": report.updated, "deactivated": report.deactivated,
            "reactivated": report.reactivated, "clashes": [c.describe() for c in report.clashes],
            "kept": report.kept, "warnings": report.warnings(), "summary": report.summary()}


def _user_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise falcon.HTTPNotFound(title="No such user") from None


class UserListResource:
    roles = ("admin", "auditor")
    openapi = {"get": Operation("Users")}

    def __init__(self, reader: sa.Engine) -> None:
        self.reader = reader

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.reader.connect() as conn:
            resp.media = {"users": [user_json(u) for u in list_users(conn)]}


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
        resp.media = sync_report_json(report)
