"""/api/v1/users: the users read model, the Active/Inactive switch, and a directory sync."""
from __future__ import annotations

from typing import Any
from uuid import UUID

import falcon
import sqlalchemy as sa
from marshmallow import Schema, fields

from adapters.directory import DirectoryError
from api.errors import RefusedChange, load
from api.openapi import Operation
from commands.users import LastActiveAdmin, NoSuchUser, SetUserActive, SyncReport, SyncUsers
from projections.users import UserListing, list_users


class ActiveSchema(Schema):
    active = fields.Boolean(required=True)


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
