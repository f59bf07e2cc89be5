"""/openapi.json generated from the marshmallow schemas (apispec)."""
from __future__ import annotations

import falcon
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from api.reports import JobQuerySchema, UsageQuerySchema
from api.licence import ActivateSchema, LicenceSettingsSchema
from api.login import LoginSchema
from api.setup import SetupSchema
from api.users import ActiveSchema
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
    _identity_paths(spec, secured)
    spec.path(path="/healthz", operations={"get": {"summary": "Health", "responses": {"200": {"description": "ok"}}}})
    return spec.to_dict()


def _identity_paths(spec: APISpec, secured: list) -> None:
    """Login, setup wizard, licence and users (docs/identity.md)."""
    def body(schema: type) -> dict:
        return {"content": {"application/json": {"schema": schema}}}

    bad = {"400": {"description": "Bad fields, each named in errors"}}
    spec.path(path="/Authentication/Login", operations={"post": {
        "summary": "Log in against the configured directory; sets a Secure HttpOnly SameSite=Strict session cookie",
        "requestBody": body(LoginSchema),
        "responses": {"200": {"description": "Logged in: login, role, csrf_token"}, **bad,
                      "401": {"description": "Wrong login or password"}, "403": {"description": "Inactive or no seat"},
                      "429": {"description": "Throttled (Retry-After)"}}}})
    spec.path(path="/Setup/NetworkSetup", operations={"post": {
        "summary": "Setup wizard: test the directory (action=test) or complete setup; closed for good afterwards",
        "requestBody": body(SetupSchema),
        "responses": {"200": {"description": "Connection test result"}, "201": {"description": "Set up"},
                      **bad, "410": {"description": "Setup is complete"}}}})
    spec.path(path="/api/v1/licence", operations={"get": {
        "summary": "Licence type, validity, expiry, seats allowed and used; this server's host and MAC",
        "security": secured, "responses": {"200": {"description": "Licence"}}}})
    spec.path(path="/api/v1/licence/activation", operations={"post": {
        "summary": "Activate online (key + company) or via a licence file", "security": secured,
        "requestBody": body(ActivateSchema),
        "responses": {"200": {"description": "Activated"}, **bad, "502": {"description": "Activation service"}}}})
    spec.path(path="/api/v1/licence/settings", operations={"put": {
        "summary": "Track unlicensed users", "security": secured, "requestBody": body(LicenceSettingsSchema),
        "responses": {"200": {"description": "Saved"}, **bad}}})
    spec.path(path="/api/v1/users", operations={"get": {
        "summary": "Users", "security": secured, "responses": {"200": {"description": "Users"}}}})
    spec.path(path="/api/v1/users/sync", operations={"post": {
        "summary": "Import and update users from the directory", "security": secured,
        "responses": {"200": {"description": "Sync report"}, "502": {"description": "Directory unreachable"}}}})
    spec.path(path="/api/v1/users/{user_id}/active", operations={"put": {
        "summary": "Set a user Active or Inactive (Inactive frees their seat)", "security": secured,
        "parameters": [{"in": "path", "name": "user_id", "required": True, "schema": {"type": "string"}}],
        "requestBody": body(ActiveSchema),
        "responses": {"200": {"description": "Saved"}, **bad, "404": {"description": "No such user"}}}})


class OpenApiResource:
    public = True

    def __init__(self) -> None:
        self.document = build_spec()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
