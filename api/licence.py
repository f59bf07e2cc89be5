"""/api/v1/licence: the licence in force, activation (online or by file), licence settings.

Reads come from the licence read model; activation and settings go through
commands.licensing. A refused key or licence is a 400 naming the field and saying why.
"""
from __future__ import annotations

from typing import Any, Callable

import falcon
import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from adapters.licence_keys import ActivationServiceError, HostIdentity, LicenceRefused
from api.errors import InvalidInput, RefusedChange, load
from api.openapi import Operation
from commands.licensing import Licensing, NoActivationService, NotInstalled
from domain.units import iso
from projections.licence_seats import LicenceSummary, licence_summary


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


def licence_json(summary: LicenceSummary | None) -> dict[str, Any] | None:
    """What Administration -> Settings -> Licensing shows; None before setup."""
    if summary is None:
        return None
    return {
        "type": summary.type, "valid": summary.valid, "status": "licensed" if summary.valid else "unlicensed",
        "expires_at": iso(summary.expires_at), "seats_allowed": summary.seats_allowed,
        "seats_used": summary.seats_used, "activated": summary.activated,
        "activation_method": summary.activation_method or None, "company": summary.company or None,
        "track_unlicensed": summary.track_unlicensed,
    }


def server_json(host: HostIdentity) -> dict[str, str]:
    # What "Activate via File" needs: the licence file must be made for these.
    return {"host": host.host, "mac": host.mac}


class LicenceResource:
    roles = ("admin", "auditor")
    openapi = {"get": Operation("Licence type, validity, expiry, seats allowed and used; this server's host and MAC")}

    def __init__(self, reader: sa.Engine, clock: Callable[[], int], host: HostIdentity) -> None:
        self.reader = reader
        self.clock = clock
        self.host = host

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.reader.connect() as conn:
            summary = licence_summary(conn, self.clock())
        resp.media = {"licence": licence_json(summary), "server": server_json(self.host)}


def activate(licensing: Licensing, data: dict) -> Any:
    """Activate online or via file from a loaded ActivateSchema (the API's and the console's),
    refusing with the field that is wrong."""
    try:
        if data["method"] == "online":
            return licensing.activate_online(data["key"], data["company"])
        return licensing.activate_file(data["licence"], data["company"])
    except LicenceRefused as exc:
        raise InvalidInput({"key" if data["method"] == "online" else "licence": [str(exc)]}) from None
    except NoActivationService as exc:  # how this server is set up, not an upstream failure
        raise RefusedChange({"method": [str(exc)]}, title="Online activation unavailable") from None
    except ActivationServiceError as exc:
        raise falcon.HTTPBadGateway(title="Activation service", description=str(exc)) from None


class ActivationResource:
    roles = ("admin",)
    openapi = {"post": Operation("Activate online (key + company) or via a licence file", body=ActivateSchema,
                                 responses={200: "Activated", 409: "No activation service is configured (use a "
                                                                   "licence file)",
                                            502: "The activation service cannot be reached or failed"})}

    def __init__(self, licensing: Licensing) -> None:
        self.licensing = licensing
        self.schema = ActivateSchema()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        verified = activate(self.licensing, data)
        resp.media = {"activated": {"type": verified.type, "seats": verified.seats,
                                    "expires": iso(verified.expires_at), "company": verified.company,
                                    "method": verified.method}}


class LicenceSettingsResource:
    roles = ("admin",)
    openapi = {"put": Operation("Track unlicensed users", body=LicenceSettingsSchema,
                                responses={200: "Saved", 409: "No licence is installed yet (complete setup)"})}

    def __init__(self, licensing: Licensing) -> None:
        self.licensing = licensing
        self.schema = LicenceSettingsSchema()

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        try:
            self.licensing.set_track_unlicensed(data["track_unlicensed"], by=req.context.principal.author)
        except NotInstalled as exc:
            raise RefusedChange({"track_unlicensed": [str(exc)]}, title="No licence installed") from None
        resp.media = {"track_unlicensed": data["track_unlicensed"]}
