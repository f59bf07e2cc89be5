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
from api.audit import (
    AUDIT_ROLES, AdminChangesResource, AsOfReportResource, AsOfResource, ErasureResource, EventsResource,
    JobHistoryResource, OwnJobsCsvResource, VerificationStateSchema,
)
from api.auth import TokenAuth
from api.client_address import ClientAddress
from api.errors import handle_unexpected
from api.health import HealthResource, MetricsResource
from api.limits import FORM, JSON, OCTETS, BodyRule, RequestLimits
from api.licence import ActivationResource, LicenceResource, LicenceSettingsResource
from api.login import LoginResource, LogoutResource
from api.openapi import OpenApiResource
from api.report_catalogue import (
    ReportCatalogueResource, ReportResource, ReportRunFileResource, ReportRunResource, ReportRunsResource,
)
from api.report_schedules import ScheduleListResource, ScheduleResource
from api.reports import JobListResource, UsageResource
from api.services import JobsResource, PolicyResource, PrinterStatesResource, SpoolResource
from api.release import (CardReadersResource, CardSwipeResource, DeleteRequestResource, HeldJobsResource, PrinterReleaseResource, ReleaseOrdersResource,
                         ReleaseOutcomeResource, ReleaseRequestResource)
from commands.printers import SetReleaseSettings
from commands.printer_status import RecordPrinterStates
from commands.release import CardReaders, DeleteJobs, HeldData, RecordReleaseOutcome, ReleaseJobs, SwipeCard
from api.setup import NetworkSetupResource, SetupCodeCheck
from api.site_settings import SettingResource, SettingsResource
from api.transport import TransportSecurity
from api.console.audit import AuditPage
from api.background_runs import RunStateResource, StartRunResource
from api.console.background_runs import RunPage, StartRunPage
from api.console.dashboard import DashboardPage
from api.console.errors import ConsoleMarker, HtmlErrors
from api.console.forms import FormCsrf
from api.console.jobs import JobPage, JobsCsv, JobsPage, MyJobsPage
from api.console.printers import PrintersPage
from api.console.render import ADMINS, READERS, Renderer
from api.console.reports import ReportPage, ReportsPage
from api.console.release_page import ReleaseLoginPage, ReleasePage
from api.console.report_runs import ReportRunPage, ReportRunStartPage
from api.console.report_schedules import ReportSchedulesPage
from api.console.secure_print import SecurePrintPage
from api.console.settings import LicensingPage, SettingsPage
from api.console.static import StaticResource
from api.console.users import UserChangePage, UsersPage
from api.users import (
    UserActiveResource, UserCardResource, UserListResource, UserPasswordResource, UserPinResource, UserResource,
    UserRoleResource, UserSyncResource, SyncRunSchema,
)
from commands.directory_sync import BackgroundSyncs
from commands.jobs import HoldJob, TrackJobs
from commands.licensing import Licensing
from commands.logins import LogIn, LogInWithCard
from commands.printers import PrinterCache, SetCostSchedule, SetSecureHold
from commands.setup import CheckDirectoryConnection, CompleteSetup
from commands.site_settings import ChangeSetting, SiteSettingsReader
from commands.users import (
    AddLocalUser, ChangePassword, ChangeRole, RemoveUser, ResetPin, SetCard, SetUserActive, SyncUsers,
)
from projections.audit import Audit
from projections.erasure import ErasePerson
from projections.event_history import EventHistory
from projections.follower import ReadModelProgress
from projections.reports import ReportSources
from commands.report_schedules import DefineSchedule, RemoveSchedule
from projections.background_reports import BackgroundReports
from projections.background_verify import BackgroundVerifications


class Wiring(Protocol):
    """What the web application is built from (pageledger.bootstrap.Runtime provides it)."""

    reader: sa.Engine
    sessions: SessionSigner
    session_revocations: SessionRevocations
    licensing: Licensing
    track_jobs: TrackJobs
    hold_job: HoldJob
    log_in: LogIn
    log_in_with_card: LogInWithCard
    check_directory_connection: CheckDirectoryConnection
    complete_setup: CompleteSetup
    set_user_active: SetUserActive
    sync_users: SyncUsers
    background_syncs: BackgroundSyncs
    add_local_user: AddLocalUser
    change_password: ChangePassword
    change_role: ChangeRole
    remove_user: RemoveUser
    set_card: SetCard
    reset_pin: ResetPin
    site_settings: SiteSettingsReader
    change_setting: ChangeSetting
    printers: PrinterCache
    set_cost_schedule: SetCostSchedule
    set_secure_hold: SetSecureHold
    offline_policy: str
    clock: Callable[[], int]
    setup_code: SetupCodeCheck
    client_address: ClientAddress

    progress: ReadModelProgress
    # secure release (api/release.py)
    release_jobs: ReleaseJobs
    delete_jobs: DeleteJobs
    release_outcome: RecordReleaseOutcome
    held_data: HeldData
    set_release_settings: SetReleaseSettings
    swipe_card: SwipeCard
    record_printer_states: RecordPrinterStates
    card_readers: CardReaders
    event_history: EventHistory
    audit: Audit
    erase_person: ErasePerson
    report_sources: ReportSources
    define_schedule: DefineSchedule
    remove_schedule: RemoveSchedule
    background_reports: BackgroundReports
    background_verifications: BackgroundVerifications

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
    # The console's forms (api.console): form bodies, checked for their CSRF token by FormCsrf.
    console_form = BodyRule((FORM,), limits.json_bytes, limits.depth)
    bodies.update({path: console_form for path in CONSOLE_FORMS})
    bodies["/Authentication/Logout"] = BodyRule((JSON, FORM), limits.json_bytes, limits.depth)
    app = falcon.App(middleware=[TransportSecurity(https_port), ConsoleMarker(),
                                 TokenAuth(w.reader, sessions=w.sessions, revocations=w.session_revocations),
                                 RequestLimits(bodies, json_only, limits.read_seconds), FormCsrf()])
    # msgspec encodes and decodes JSON in C: a 500-job answer in a fraction of json's time.
    json_handler = falcon.media.JSONHandler(dumps=msgspec.json.encode, loads=msgspec.json.decode)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.add_error_handler(Exception, handle_unexpected)
    renderer = Renderer(lambda: str(w.site_settings.values().get("timezone", "UTC")))
    app.add_error_handler(falcon.HTTPError, HtmlErrors(renderer))
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
    route("/Services/jobs/{job_id}/spool", SpoolResource(w.hold_job, w.held_data))
    route("/Services/releases", ReleaseOrdersResource(w.reader))
    route("/Services/jobs/{job_id}/release-outcome", ReleaseOutcomeResource(w.release_outcome))
    route("/Services/card-readers", CardReadersResource(w.card_readers))
    route("/Services/card-swipes", CardSwipeResource(w.swipe_card))
    route("/Services/printer-states", PrinterStatesResource(w.record_printer_states))
    if role != "services":
        route("/api/v1/jobs", JobListResource(w.reader, w.clock, w.site_settings))
        route("/api/v1/usage", UsageResource(w.reader, w.clock, w.site_settings))
        route("/Authentication/Login", LoginResource(w.log_in, w.sessions, w.client_address, renderer))
        route("/Authentication/Logout", LogoutResource(w.sessions, w.session_revocations))
        route("/Setup/NetworkSetup", NetworkSetupResource(w.is_set_up, w.check_directory_connection,
                                                          w.complete_setup, w.sessions, host, w.setup_code, renderer))
        route("/api/v1/licence", LicenceResource(w.reader, w.clock, host))
        route("/api/v1/licence/activation", ActivationResource(w.licensing))
        route("/api/v1/licence/settings", LicenceSettingsResource(w.licensing))
        route("/api/v1/users", UserListResource(w.reader, w.add_local_user))
        route("/api/v1/users/sync", UserSyncResource(w.sync_users))
        # A directory sync in the background (commands.directory_sync), as the console's Users page starts it.
        route("/api/v1/users/syncs", StartRunResource(
            w.background_syncs, ADMINS, "/api/v1/users/syncs",
            "Import and update users from the directory in the background (one sync at a time); poll the URL answered"))
        route("/api/v1/users/syncs/{run_id}", RunStateResource(
            w.background_syncs, ADMINS, "directory sync",
            "A background directory sync's state, progress and, once done, its report", SyncRunSchema))
        route("/api/v1/users/{user_id}", UserResource(w.remove_user))
        route("/api/v1/users/{user_id}/active", UserActiveResource(w.set_user_active))
        route("/api/v1/users/{user_id}/password", UserPasswordResource(w.change_password))
        route("/api/v1/users/{user_id}/role", UserRoleResource(w.change_role))
        route("/api/v1/users/{user_id}/card", UserCardResource(w.set_card))
        route("/api/v1/users/{user_id}/pin", UserPinResource(w.reset_pin))
        route("/api/v1/settings", SettingsResource(w.site_settings))
        route("/api/v1/settings/{field}", SettingResource(w.change_setting, w.site_settings))
        route("/api/v1/held-jobs", HeldJobsResource(w.reader))
        route("/api/v1/held-jobs/release", ReleaseRequestResource(w.reader, w.release_jobs))
        route("/api/v1/held-jobs/delete", DeleteRequestResource(w.reader, w.delete_jobs))
        route("/api/v1/printers/{name}/release", PrinterReleaseResource(w.set_release_settings))
        # audit and privacy (docs/audit-privacy.md)
        route("/api/v1/events", EventsResource(w.event_history))
        route("/api/v1/jobs/{job}/history", JobHistoryResource(w.event_history))
        route("/api/v1/audit/as-of", AsOfResource(w.audit, w.clock))
        route("/api/v1/audit/as-of/{name}", AsOfReportResource(w.audit))
        route("/api/v1/audit/changes", AdminChangesResource(w.audit))
        # `audit verify` in the background (projections.background_verify), as the console's Audit page starts it.
        route("/api/v1/audit/verifications", StartRunResource(
            w.background_verifications, AUDIT_ROLES, "/api/v1/audit/verifications",
            "Verify the log's seals and rebuild every read model to compare it, in the background (as "
            "`pageledger audit verify`); poll the URL answered"))
        route("/api/v1/audit/verifications/{run_id}", RunStateResource(
            w.background_verifications, AUDIT_ROLES, "verification",
            "A verification's state, progress and, once done, its result per check", VerificationStateSchema))
        route("/api/v1/me/jobs.csv", OwnJobsCsvResource(w.reader))
        route("/api/v1/privacy/erasures", ErasureResource(w.erase_person))
        # Reports (projections.reports): the catalogue and each report in every format.
        route("/api/v1/reports", ReportCatalogueResource())
        route("/api/v1/reports/{name}", ReportResource(w.reader, w.site_settings, w.report_sources, w.clock))
        route("/api/v1/reports/{name}/runs", ReportRunsResource(w.background_reports, w.site_settings, w.clock))
        route("/api/v1/report-runs/{run_id}", ReportRunResource(w.background_reports))
        route("/api/v1/report-runs/{run_id}/file", ReportRunFileResource(w.background_reports))
        route("/api/v1/report-schedules", ScheduleListResource(w.reader))
        route("/api/v1/report-schedules/{name}", ScheduleResource(w.define_schedule, w.remove_schedule))
        # The web console (api/console): pages over the same handlers and queries as the API.
        route("/static/{name}", StaticResource())
        route("/", DashboardPage(renderer, w.reader, w.clock))
        route("/jobs", JobsPage(renderer, w.reader, w.clock))
        route("/jobs.csv", JobsCsv(w.reader, w.clock))
        route("/jobs/{job}", JobPage(renderer, w.reader, w.event_history))
        route("/my/jobs", MyJobsPage(renderer, w.reader, w.clock))
        users_page = UsersPage(renderer, w.reader, w.add_local_user, w.progress)
        route("/users", users_page)
        route("/users/{user_id}/{change}", UserChangePage(renderer, w.reader, w.set_user_active, w.change_role,
                                                          w.set_card, w.reset_pin, users_page))
        route("/printers", PrintersPage(renderer, w.reader, w.printers, w.set_cost_schedule, w.set_secure_hold,
                                        w.set_release_settings, w.event_history))
        route("/admin/settings", SettingsPage(renderer, w.site_settings))
        route("/admin/licensing", LicensingPage(renderer, w.reader, w.clock, host, w.licensing, w.progress))
        route("/release", ReleasePage(renderer, w.reader, w.printers, w.release_jobs, w.delete_jobs, w.progress))
        route("/release/login", ReleaseLoginPage(renderer, w.log_in, w.log_in_with_card, w.sessions,
                                                 w.client_address))
        route("/secure-print", SecurePrintPage(renderer, w.reader, w.printers, w.release_jobs, w.delete_jobs,
                                               w.progress))
        route("/reports", ReportsPage(renderer))
        route("/reports/{name}", ReportPage(renderer, w.reader, w.site_settings, w.report_sources, w.clock))
        route("/report-schedules", ReportSchedulesPage(renderer, w.reader, w.define_schedule, w.remove_schedule,
                                                       w.progress))
        route("/reports/{name}/runs", ReportRunStartPage(w.background_reports, w.site_settings, w.clock))
        route("/report-runs/{run_id}", ReportRunPage(renderer, w.background_reports))
        route("/audit", AuditPage(renderer, w.event_history, w.audit))
        route("/audit/verify", StartRunPage(w.background_verifications, READERS, "/audit/verify",
                                            "Start `audit verify` (HTML form with csrf_token)"))
        route("/audit/verify/{run_id}", RunPage(renderer, w.background_verifications, READERS, "audit_verify.html",
                                                "Audit: verify the log", "/api/v1/audit/verifications",
                                                "verification"))
        route("/directory-sync", StartRunPage(w.background_syncs, ADMINS, "/directory-sync",
                                              "Start a directory sync (HTML form with csrf_token)"))
        route("/directory-sync/{run_id}", RunPage(renderer, w.background_syncs, ADMINS, "directory_sync.html",
                                                  "Users: sync with the directory", "/api/v1/users/syncs",
                                                  "directory sync"))
    return app


# Console routes that take a form post (their CSRF token is a form field).
CONSOLE_FORMS = ("/users", "/users/{user_id}/{change}", "/printers", "/admin/licensing", "/secure-print",
                 "/release", "/release/login", "/audit/verify", "/report-schedules", "/reports/{name}/runs",
                 "/directory-sync")
