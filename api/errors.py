"""Every error leaves as JSON: {"title", "description"?, "errors"?: {field: [messages]}}."""
from __future__ import annotations

import logging
from typing import Any

import falcon
from marshmallow import Schema, ValidationError, fields

from commands.validation import InvalidRequest, flatten_messages

log = logging.getLogger("pageledger.api")


class ErrorSchema(Schema):
    """What every error answer's JSON body holds (/openapi.json describes each 4xx with it)."""

    title = fields.String(required=True)
    description = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "each bad field with what is wrong with it"})
    outcome = fields.String(metadata={"description": "why a login was refused (/Authentication/Login only)"})


class InvalidInput(falcon.HTTPBadRequest):
    """400 naming each bad field; raised before anything is written."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(title="Invalid input", description="Some fields are not valid; see errors.")
        self.field_errors = errors

    def to_dict(self, obj_type: type = dict) -> Any:
        data = super().to_dict(obj_type)
        data["errors"] = self.field_errors
        return data


class RefusedChange(falcon.HTTPConflict):
    """409: the change is valid input but the current state refuses it (the last active
    admin, a login that exists); `errors` names the field, as for a 400."""

    def __init__(self, errors: dict[str, list[str]], title: str = "Change refused") -> None:
        super().__init__(title=title, description=" ".join(m for ms in errors.values() for m in ms))
        self.field_errors = errors

    def to_dict(self, obj_type: type = dict) -> Any:
        data = super().to_dict(obj_type)
        data["errors"] = self.field_errors
        return data


def load(schema: Any, data: Any) -> Any:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput(flatten_messages(exc.messages)) from None


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    if isinstance(ex, falcon.HTTPError):
        raise ex
    if isinstance(ex, InvalidRequest):
        raise InvalidInput(ex.errors)
    log.exception("unexpected error handling %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(title="Internal error", description="The error has been logged.")
