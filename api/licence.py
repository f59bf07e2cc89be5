"""/api/v1/licence: the licence in force, activation (online or by file), licence settings.

Reads come from the licence read model; activation and settings go through
commands.licensing. A refused key or licence is a 400 naming the field and saying why.
"""
from __future__ import annotations

import falcon
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.errors import InvalidInput, load
from pageledger.bootstrap import Runtime
from pageledger.licence_keys import ActivationServiceError, LicenceRefused, iso
from projections.licence_seats import licence_summary


class ActivateSchema(Schema):
    method = fields.String(required=True, validate=validate.OneOf(("online", "file")))
    company = fields.String(required=True, validate=validate.Length(1, 255))
    key = fields.String(validate=validate.Length(1, 2000))
    licence = fields.String(validate=validate.Length(1, 100_000))

    @validates_schema
    def _what_the_method_needs(self, data: dict, **_: object) -> None:
        if data.get("method") == "online" and not data.get("key"):
            raise ValidationError("required to activate online", field_name="key")
        if data.get("method") == "file" and not data.get("licence"):
            raise ValidationError("required to activate via file: the licence file's contents", field_name="licence")


class LicenceSettingsSchema(Schema):
    track_unlicensed = fields.Boolean(required=True)


class LicenceResource:
    roles = ("admin", "auditor")

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        identity = self.runtime.identity
        with self.runtime.reader.connect() as conn:
            summary = licence_summary(conn, identity.clock())
        host = identity.licensing.identity
        resp.media = {
            "licence": summary,
            # What "Activate via File" needs: the licence file must be made for these.
            "server": {"host": host.host, "mac": host.mac},
        }


class ActivationResource:
    roles = ("admin",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.schema = ActivateSchema()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        licensing = self.runtime.identity.licensing
        try:
            if data["method"] == "online":
                verified = licensing.activate_online(data["key"], data["company"])
            else:
                verified = licensing.activate_file(data["licence"], data["company"])
        except LicenceRefused as exc:
            raise InvalidInput({"key" if data["method"] == "online" else "licence": [str(exc)]}) from None
        except ActivationServiceError as exc:
            raise falcon.HTTPBadGateway(title="Activation service", description=str(exc)) from None
        resp.media = {"activated": {"type": verified.type, "seats": verified.seats,
                                    "expires": iso(verified.expires_at), "company": verified.company,
                                    "method": verified.method}}


class LicenceSettingsResource:
    roles = ("admin",)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.schema = LicenceSettingsSchema()

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        self.runtime.identity.licensing.set_track_unlicensed(data["track_unlicensed"],
                                                              by=req.context.principal.subject)
        resp.media = {"track_unlicensed": data["track_unlicensed"]}
