"""/api/v1/settings: the site settings, each saved on its own (field-level save).

GET lists every field with its value, default and what it takes. PATCH /api/v1/settings/{field}
sets one field: `value`, and `expected` (the value the admin saw) so that a change made from a
stale value is refused with the current one (409) instead of overwriting another admin's.
"""
from __future__ import annotations

from typing import Any

import falcon
from marshmallow import Schema, fields

from api.errors import InvalidInput, RefusedChange, load
from api.openapi import Operation
from commands.site_settings import ChangeSetting, SiteSettingsReader
from domain.site_settings import FIELDS, SettingError, StaleSetting, shown_value


class SettingChangeSchema(Schema):
    value = fields.Raw(required=True, allow_none=False,
                       metadata={"description": "the new value: text, a number or true/false, as the field takes"})
    expected = fields.Raw(allow_none=False, metadata={"description": "the value the change was made from; "
                                                                     "refused with 409 when it is no longer current"})


class SettingSchema(Schema):
    name = fields.String(required=True)
    description = fields.String(required=True)
    kind = fields.String(required=True)
    value = fields.Raw(required=True)
    default = fields.Raw(required=True)
    choices = fields.List(fields.String())
    minimum = fields.Float()
    maximum = fields.Float()


class SettingsListSchema(Schema):
    settings = fields.List(fields.Nested(SettingSchema), required=True)


def setting_json(name: str, value: Any) -> dict[str, Any]:
    spec = FIELDS[name]
    out: dict[str, Any] = {"name": name, "description": spec.description, "kind": spec.kind,
                           "value": shown_value(name, value), "default": shown_value(name, spec.default)}
    if spec.choices:
        out["choices"] = list(spec.choices)
    if spec.minimum is not None:
        out["minimum"], out["maximum"] = spec.minimum, spec.maximum
    return out


class SettingsResource:
    roles = ("admin", "auditor")
    openapi = {"get": Operation("Every site setting with its value, default and the values it takes",
                                reply=SettingsListSchema)}

    def __init__(self, reader: SiteSettingsReader) -> None:
        self.reader = reader

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = self.reader.values()
        resp.media = {"settings": [setting_json(name, values[name]) for name in FIELDS]}


class SettingResource:
    roles = ("admin",)
    openapi = {"patch": Operation("Save one setting (one event with its old and new values and who changed it)",
                                  body=SettingChangeSchema, reply=SettingSchema,
                                  responses={404: "No such setting",
                                             409: "Changed meanwhile: the answer names the current value"})}

    def __init__(self, change: ChangeSetting, reader: SiteSettingsReader) -> None:
        self.change = change
        self.reader = reader
        self.schema = SettingChangeSchema()

    def on_patch(self, req: falcon.Request, resp: falcon.Response, field: str) -> None:
        if field not in FIELDS:
            raise falcon.HTTPNotFound(title="No such setting", description=f"there is no setting {field[:80]!r}")
        data = load(self.schema, req.get_media(default_when_empty=None) or {})
        extra = {"expected": data["expected"]} if "expected" in data else {}
        try:
            result = self.change(field, data["value"], by=req.context.principal.author, **extra)
        except SettingError as exc:
            raise InvalidInput({"value": [str(exc)]}) from None
        except StaleSetting as exc:
            error = RefusedChange({"expected": [str(exc)]}, title="Setting changed meanwhile")
            error.field_errors["current"] = [repr(exc.current)]
            raise error from None
        resp.media = setting_json(field, result.new)
