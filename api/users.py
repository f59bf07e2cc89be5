"""/api/v1/users: the users read model, the Active/Inactive switch, and a directory sync."""
from __future__ import annotations

from uuid import UUID

import falcon
from eventsourcing.application import AggregateNotFoundError
from marshmallow import Schema, fields

from api.errors import load
from commands.users import set_user_active, sync_users
from pageledger.bootstrap import Runtime
from pageledger.directory import DirectoryError
from projections.users import list_users


class ActiveSchema(Schema):
    active = fields.Boolean(required=True)


class UserListResource:
    roles = ("admin", "auditor")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.runtime.reader.connect() as conn:
            resp.media = {"users": list_users(conn)}


class UserActiveResource:
    roles = ("admin",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.schema = ActiveSchema()

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: str) -> None:
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        try:
            uid = UUID(user_id)
            identity = self.runtime.identity
            changed = set_user_active(self.runtime.app, identity.licensing, uid, data["active"], clock=identity.clock)
        except (ValueError, AggregateNotFoundError):
            raise falcon.HTTPNotFound(title="No such user") from None
        resp.media = {"id": user_id, "active": data["active"], "changed": changed}


class UserSyncResource:
    roles = ("admin",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        identity = self.runtime.identity
        try:
            report = sync_users(self.runtime.app, identity.directory(), self.runtime.reader, identity.licensing,
                                identity.pin_digest, identity.clock)
        except DirectoryError as exc:
            raise falcon.HTTPBadGateway(title="Directory", description=str(exc)) from None
        resp.media = {"imported": report.imported, "updated": report.updated, "deactivated": report.deactivated,
                      "reactivated": report.reactivated, "clashes": [c.describe() for c in report.clashes]}
