"""/openapi.json generated from the marshmallow schemas (apispec)."""
from __future__ import annotations

import falcon
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from api.reports import JobQuerySchema, UsageQuerySchema
from commands.track_jobs import TrackJobsSchema


def build_spec() -> dict:
    spec = APISpec(title="PageLedger", version="1", openapi_version="3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("TrackJobs", schema=TrackJobsSchema)
    secured = [{"bearer": []}]
    spec.path(path="/Services/jobs", operations={"post": {
        "summary": "Track a batch of print jobs (agent). All or nothing; re-posts are duplicates.",
        "security": secured,
        "requestBody": {"content": {"application/json": {"schema": "TrackJobs"}}},
        "responses": {"200": {"description": "One result per job"}, "400": {"description": "Bad fields"},
                      "401": {"description": "No or bad token"}},
    }})
    spec.path(path="/Services/policy", operations={"get": {
        "summary": "Offline policy for agents", "security": secured,
        "responses": {"200": {"description": "Policy"}}}})
    spec.path(path="/api/v1/jobs", operations={"get": {
        "summary": "Tracked jobs, newest first, keyset paged", "security": secured,
        "parameters": [{"in": "query", "schema": JobQuerySchema}],
        "responses": {"200": {"description": "A page of jobs"}, "400": {"description": "Bad fields"}}}})
    spec.path(path="/api/v1/usage", operations={"get": {
        "summary": "Usage totals grouped by user, printer or day", "security": secured,
        "parameters": [{"in": "query", "schema": UsageQuerySchema}],
        "responses": {"200": {"description": "Totals"}}}})
    spec.path(path="/healthz", operations={"get": {"summary": "Health", "responses": {"200": {"description": "ok"}}}})
    return spec.to_dict()


class OpenApiResource:
    public = True

    def __init__(self) -> None:
        self.document = build_spec()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
