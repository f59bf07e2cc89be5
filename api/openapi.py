"""/openapi.json, generated from the routes of the app itself and the resources' marshmallow schemas.

There is no second list of paths to keep: `build_spec` walks every route `create_app` added,
and every `on_<method>` responder of its resource becomes an operation. A resource describes
its operations in a class attribute `openapi` (summary, request body and query schemas, extra
responses, the JSON body of its 200 answer); a responder it does not describe still appears, with
its docstring as the summary. Every 4xx answer is described with the one error body all of them
carry (api.errors.ErrorSchema), so a client or the fuzz tier (tests/fuzz) can check the answers too.
Security follows the resource's own `public` / `roles` / `method_roles`, which the
authentication middleware enforces, so the document says what the server does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import falcon
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from api.auth import allowed_roles
from api.errors import ErrorSchema

_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    """What a resource says about one of its responders."""

    summary: str
    body: type[Schema] | None = None  # a JSON request body
    query: type[Schema] | None = None  # query-string parameters
    responses: dict[int, str] = field(default_factory=dict)
    body_content: str = "application/json"  # e.g. application/octet-stream for the spool upload
    reply: type[Schema] | None = None  # the JSON body of the 200 answer (and of `reply_also` answers)
    reply_also: tuple[int, ...] = ()  # other status codes answered with the same body (e.g. 503 of /healthz)
    path_patterns: dict[str, str] = field(default_factory=dict)  # a path parameter's regular expression


def build_spec(routes: Iterable[tuple[str, object]]) -> dict:
    spec = APISpec(title="PageLedger", version="1", openapi_version="3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("session", {"type": "apiKey", "in": "cookie", "name": "pl_session"})
    for path, resource in routes:
        operations = {}
        for method in _METHODS:
            responder = getattr(resource, f"on_{method}", None)
            if responder is None:
                continue
            operations[method] = _operation(spec, path, resource, method, responder)
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(spec: APISpec, path: str, resource: object, method: str, responder: Any) -> dict:
    described: Operation | None = getattr(resource, "openapi", {}).get(method)
    summary = described.summary if described else (responder.__doc__ or "").strip().split("\n")[0]
    op: dict[str, Any] = {"summary": summary or f"{method.upper()} {path}",
                          "responses": {"200": {"description": "OK"}}}
    patterns = described.path_patterns if described else {}
    parameters: list[dict] = [{"in": "path", "name": name, "required": True,
                               "schema": {"type": "string", **({"pattern": patterns[name]} if name in patterns else {})}}
                              for name in re.findall(r"{(\w+)}", path)]
    if described and described.query is not None:
        parameters.append({"in": "query", "schema": described.query})
    if parameters:
        op["parameters"] = parameters
    if described and described.body is not None:
        name = _component(spec, described.body)
        op["requestBody"] = {"required": True, "content": {described.body_content: {"schema": name}}}
    elif described and described.body_content != "application/json":
        op["requestBody"] = {"required": True, "content": {described.body_content: {
            "schema": {"type": "string", "format": "binary"}}}}
    responses: dict[str, dict] = {}
    if described:
        responses.update({str(code): {"description": text} for code, text in described.responses.items()})
    if described and (described.body is not None or described.query is not None):
        responses.setdefault("400", {"description": "Bad fields, each named in errors"})
    if described and described.body is not None:  # api.limits bounds every body before it is parsed
        responses.setdefault("413", {"description": "Body larger than the endpoint takes"})
    if not getattr(resource, "public", False):
        roles = ", ".join(allowed_roles(resource, method))
        op["security"] = [{"bearer": []}, {"session": []}]
        op["description"] = f"Roles: {roles}."
        responses.setdefault("401", {"description": "No, unknown or revoked token or session"})
        responses.setdefault("403", {"description": f"Role not allowed (allowed: {roles})"})
    if responses:
        op["responses"] = {**({} if any(c.startswith("2") for c in responses) else op["responses"]), **responses}
    if described and described.reply is not None:
        reply = _component(spec, described.reply)
        for code in ("200", *map(str, described.reply_also)):
            op["responses"][code]["content"] = {"application/json": {"schema": reply}}
    error = _component(spec, ErrorSchema)
    for code, response in op["responses"].items():
        if code.startswith("4") and "content" not in response:
            response["content"] = {"application/json": {"schema": error}}
    return op


def _component(spec: APISpec, schema: type[Schema]) -> str:
    name = schema.__name__.removesuffix("Schema")
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)
    return name


class OpenApiResource:
    public = True
    openapi = {"get": Operation("This document: every route of the server, generated from the routes")}

    def __init__(self, routes: list[tuple[str, object]]) -> None:
        self.routes = routes  # the list create_app fills as it adds routes (read at the first request)
        self._document: dict | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._document is None:
            self._document = build_spec(self.routes)
        resp.media = self._document
