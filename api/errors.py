"""Every error leaves as JSON: {"title", "description"?, "errors"?: {field: [messages]}}."""
from __future__ import annotations

import logging
from typing import Any

import falcon
from marshmallow import ValidationError

log = logging.getLogger("pageledger.api")


class InvalidInput(falcon.HTTPBadRequest):
    """400 naming each bad field; raised before anything is written."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(title="Invalid input", description="Some fields are not valid; see errors.")
        self.field_errors = errors

    def to_dict(self, obj_type: type = dict) -> Any:
        data = super().to_dict(obj_type)
        data["errors"] = self.field_errors
        return data


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as {"jobs.0.pages": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = list(messages)
    else:
        out[prefix or "_schema"] = [str(messages)]
    return out


def load(schema: Any, data: Any) -> Any:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidInput(flatten(exc.messages)) from None


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    if isinstance(ex, falcon.HTTPError):
        raise ex
    log.exception("unexpected error handling %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(title="Internal error", description="The error has been logged.")
