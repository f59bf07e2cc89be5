"""The Falcon application factory: each resource gets only the handlers and queries it uses."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import falcon
import msgspec
import sqlalchemy as sa

from adapters.licence_keys import HostIdentity
from adapters.session_revocations import SessionRevocations
from adapters.sessions import SessionSigner
from api.auth import TokenAuth
from api.client_address import ClientAddress
from api.errors import handle_unexpected
from api.health import HealthResource, MetricsResource
from api.limits import FORM, JSON, OCTETS, BodyRule, RequestLimits
from api.licence import ActivationResource, LicenceResource, LicenceSettingsResource
from api.login import LoginResource, LogoutResource
from api.openapi import OpenApiResource
from api.reports import JobListResource, UsageResource
from api.services import JobsResource, PolicyResource, SpoolResource
from api.setup import NetworkSetupResource, SetupCodeCheck
from api.site_settings import SettingResource, SettingsResource
from api.transport import TransportSecurity
from api.users import (
    UserActiveResource, UserListResource, UserPasswordResource, UserResource, UserRoleResource, UserSyncResource,
)
from commands.jobs import HoldJob, TrackJobs
from commands.licensing import Licensing
from commands.logins import LogIn
from commands.setup import CheckDirectoryConnection, CompleteSetup
from commands.site_settings import ChangeSetting, SiteSettingsReader
from commands.users import AddLocalUser, ChangePassword, ChangeRole, RemoveUser, SetUserActive, SyncUsers
from projections.follower import ReadModelProgress


class Wiring(Protocol):
    """What the web application is built from (pageledger.bootstrap.Runtime provides it)."""

    reader: sa.Engine
    sessions: SessionSigner
    session_revocations: SessionRevocations
    licensing: Licensing
    track_jobs: TrackJobs
    hold_job: HoldJob
    log_in: LogIn
    check_directory_connection: CheckDirectoryConnection
    complete_setup: CompleteSetup
    set_user_active: SetUserActive
    sync_users: SyncUsers
    add_local_user: AddLocalUser
    change_password: ChangePassword
    change_role: ChangeRole
    remove_user: RemoveUser
    site_settings: SiteSettingsReader
    change_setting: ChangeSetting
    offline_policy: str
    clock: Callable[[], int]
    setup_code: SetupCodeCheck
    client_address: ClientAddress

    progress: ReadModelProgress

    def is_set_up(self) -> bool: ...


@dataclass(frozen=True)
class BodyLimits:
    """The request bodies the routes take (pageledger.settings: max_json_bytes, max_batch_bytes,
    max_json_depth, body_read_seconds)."""

    json_bytes: int = 1024 * 1024
    batch_bytes: int = 8 * 1024 * 1024
    depth: int = 32
    read_seconds: float = 10.0


def create_app(w: Wiring, role: str = "all", limits: BodyLimits = BodyLimits(),
               https_port: int | None = None) -> falcon.App:
    """`role` "services" serves only the agent endpoints (a separate Services host). With
    `https_port`, plain HTTP redirects browsers there (api.transport)."""
    json_only = BodyRule((JSON,), limits.json_bytes, limits.depth)
    bodies = {
        # 5,000 jobs (commands.job_reports.MAX_BATCH) of a few hundred bytes each, with room.
        "/Services/jobs": BodyRule((JSON,), limits.batch_bytes, limits.depth),
        # Up to 400 MB, streamed: SpoolResource and the spool store bound it themselves.
        "/Services/jobs/{job_id}/spool": BodyRule((OCTETS,), None, limits.depth),
        # They have HTML forms too.
        "/Authentication/Login": BodyRule((JSON, FORM), limits.json_bytes, limits.depth),
        "/Setup/NetworkSetup": BodyRule((JSON, FORM), limits.json_bytes, limits.depth),
    }
    app = falcon.App(middleware=[TransportSecurity(https_port),
                                 TokenAuth(w.reader, sessions=w.sessions, revocations=w.session_revocations),
                                 RequestLimits(bodies, json_only, limits.read_seconds)])
    # msgspec encodes and decodes JSON in C: a 500-job answer in a fraction of json's time.
    json_handler = falcon.media.JSONHandler(dumps=msgspec.json.encode, loads=msgspec.json.decode)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.add_error_handler(Exception, handle_unexpected)
    app.req_options.strip_url_path_trailing_slash = True
    host: HostIdentity = w.licensing.identity
    routes: list[tuple[str, object]] = []

    def route(path: str, resource: object) -> None:
        app.add_route(path, resource)
        routes.append((path, resource))  # what /openapi.json is generated from

    p = w.progress
    route("/healthz", HealthResource(p.head, p.positions, p.first_waiting, p.runner_running, p.failures))
    route("/metrics", MetricsResource(p.head, p.positions, p.first_waiting, p.runner_running, p.failures))
    route("/openapi.json", OpenApiResource(routes))
    route("/Services/jobs", JobsResource(w.track_jobs, w.clock))
    route("/Services/policy", PolicyResource(w.offline_policy))
    route("/Services/jobs/{job_id}/spool", SpoolResource(w.hold_job))
    if role != "services":
        route("/api/v1/jobs", JobListResource(w.reader, w.clock))
        route("/api/v1/usage", UsageResource(w.reader, w.clock))
        route("/Authentication/Login", LoginResource(w.log_in, w.sessions, w.client_address))
        route("/Authentication/Logout", LogoutResource(w.sessions, w.session_revocations))
        route("/Setup/NetworkSetup", NetworkSetupResource(w.is_set_up, w.check_directory_connection,
                                                          w.complete_setup, w.sessions, host, w.setup_code))
        route("/api/v1/licence", LicenceResource(w.reader, w.clock, host))
        route("/api/v1/licence/activation", ActivationResource(w.licensing))
        route("/api/v1/licence/settings", LicenceSettingsResource(w.licensing))
        route("/api/v1/users", UserListResource(w.reader, w.add_local_user))
        route("/api/v1/users/sync", UserSyncResource(w.sync_users))
        route("/api/v1/users/{user_id}", UserResource(w.remove_user))
        route("/api/v1/users/{user_id}/active", UserActiveResource(w.set_user_active))
        route("/api/v1/users/{user_id}/password", UserPasswordResource(w.change_password))
        route("/api/v1/users/{user_id}/role", UserRoleResource(w.change_role))
        route("/api/v1/settings", SettingsResource(w.site_settings))
        route("/api/v1/settings/{field}", SettingResource(w.change_setting, w.site_settings))
    return app
