"""The Falcon application factory."""
from __future__ import annotations

import falcon
import msgspec

from api.auth import TokenAuth
from api.errors import handle_unexpected
from api.health import HealthResource
from api.login import LoginResource, LogoutResource
from api.setup import NetworkSetupResource
from api.licence import ActivationResource, LicenceResource, LicenceSettingsResource
from api.openapi import OpenApiResource
from api.reports import JobListResource, UsageResource
from api.services import JobsResource, PolicyResource, SpoolResource
from api.users import UserActiveResource, UserListResource, UserSyncResource
from pageledger.bootstrap import ReadModelProgress, Runtime


def create_app(runtime: Runtime, role: str = "all") -> falcon.App:
    """`role` "services" serves only the agent endpoints (a separate Services host)."""
    app = falcon.App(middleware=[TokenAuth(runtime.reader, sessions=runtime.identity.sessions)])
    # msgspec encodes and decodes JSON in C: a 500-job answer in a fraction of json's time.
    json_handler = falcon.media.JSONHandler(dumps=msgspec.json.encode, loads=msgspec.json.decode)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.add_error_handler(Exception, handle_unexpected)
    app.req_options.strip_url_path_trailing_slash = True
    progress = ReadModelProgress(runtime)
    app.add_route("/healthz", HealthResource(progress.head, progress.positions, progress.first_waiting,
                                             progress.runner_running))
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/Services/jobs", JobsResource(runtime))
    app.add_route("/Services/policy", PolicyResource(runtime))
    app.add_route("/Services/jobs/{job_id}/spool", SpoolResource(runtime))
    if role != "services":
        app.add_route("/api/v1/jobs", JobListResource(runtime))
        app.add_route("/api/v1/usage", UsageResource(runtime))
        app.add_route("/Authentication/Login", LoginResource(runtime))
        app.add_route("/Authentication/Logout", LogoutResource(runtime))
        app.add_route("/Setup/NetworkSetup", NetworkSetupResource(runtime))
        app.add_route("/api/v1/licence", LicenceResource(runtime))
        app.add_route("/api/v1/licence/activation", ActivationResource(runtime))
        app.add_route("/api/v1/licence/settings", LicenceSettingsResource(runtime))
        app.add_route("/api/v1/users", UserListResource(runtime))
        app.add_route("/api/v1/users/sync", UserSyncResource(runtime))
        app.add_route("/api/v1/users/{user_id}/active", UserActiveResource(runtime))
    return app
