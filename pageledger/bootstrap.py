"""The composition root: settings → adapters → one handler object per use case.

`build_runtime` is the only place that knows which adapter serves which port: it opens the
event store and the read-model engines, builds the spool, the directory source, the licence
checks, the throttle and the session signer, and hands each command handler exactly what it
needs through its constructor. The API (api.create_app), the CLI, the workers and the coming
release service and migration tool all use these same handlers; none of them builds its own.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence
from uuid import UUID

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.application import AggregateNotFoundError

import migrations
from adapters.clock import system_clock
from adapters.directory import LdapConfig, LdapDirectory, LocalAccount, LocalDirectory
from adapters.directory_config import LDAP, DirectoryConfigFile
from adapters.event_store import PageLedger
from adapters.licence_keys import load_public_key, shipped_public_key, this_host
from adapters.mail import SmtpMailer, SmtpSettings
from adapters.pins import PinDigester, load_or_create_secret
from adapters.setting_secrets import SettingSealer
from adapters.runner_lock import RunnerLock, runner_lock_is_held
from adapters.setup_code import SetupCode
from adapters.session_revocations import SessionRevocations
from adapters.sessions import SessionSigner
from adapters.spool import SpoolStore
from adapters.stores import event_store_ddl_in_turn, event_store_env, is_postgres, read_model_engine, writes_lock
from adapters.throttle import LoginThrottle
from commands.access_tokens import IssueToken, RevokeToken
from commands.jobs import HoldJob, RecordMigratedJobs, TrackJobs
from commands.licensing import Licensing
from commands.logins import LogIn, LogInWithCard
from commands.ports import Directory
from commands.printers import (PrinterCache, ReplayLegacySchedules, SetCostSchedule, SetReleaseSettings,
                               SetSecureHold)
from commands.printer_status import RecordPrinterStates
from commands.release import (CardReaders, DeleteJobs, ExpireJobs, HeldData, RecordReleaseOutcome, ReleaseJobs,
                              SpoolRemover, SwipeCard)
from api.client_address import ClientAddress
from commands.setup import CheckDirectoryConnection, CompleteSetup, DirectoryTargets, is_set_up
from commands.site_settings import ChangeSetting, SiteSettingsReader
from commands.users import (
    AddLocalUser, ChangePassword, ChangeRole, ImportLegacyUsers, RemoveUser, ResetPin, SetCard, SetUserActive,
    SyncUsers,
)
from domain.costs import CostSchedule
from adapters.personal_keys import PersonalKeys, erasures_table, keys_table, people_table, subjects_table
from adapters.stores import rewrite_freed_pages
from domain.privacy import shown_document
from projections.audit import Audit
from projections.erasure import ErasePerson
from projections.event_history import EventHistory
from projections.jobs import JobsProjection
from domain.users import LOCAL_SOURCE, User
from pageledger.settings import Settings, SettingsError
from projections.follower import Follower, ProjectionRunner, ReadModelProgress, all_projections
from projections.held_jobs import spools_in_use, waiting_jobs
from projections.names import printer_keys
from projections.users import UsersProjection, find_user, logins_of_addresses, users as users_table
from projections.licence_seats import LicenceSeatsProjection, denied_since
from projections.login_audit import LoginAuditProjection
from projections.access_tokens import AccessTokensProjection, tokens_of_subject
from projections.report_schedules import ReportSchedulesProjection
from projections.seat_tenures import SeatTenuresProjection
from commands.report_schedules import DefineSchedule, RemoveSchedule, ScheduleDefinition, ScheduleRuns
from projections.report_period import ReportInputError, parse_parameters
from projections.reports import CATALOGUE, ReportSources
from workers.scheduled_reports import ScheduledRuns, ScheduleLoop
from adapters.report_runs import ReportRunStore
from projections.background_reports import BackgroundReports
from projections.background_verify import BackgroundVerifications
from concurrent.futures import ThreadPoolExecutor
from redis import Redis
from rq import Queue
from projections.users import UsersReadModel
from workers.licence_notices import SendDenialNotice
from workers.release_code_mail import ReleaseCodeMailer
from commands.directory_sync import BackgroundSyncs
from workers.release_housekeeping import ReleaseHousekeeping

log = logging.getLogger("pageledger")


@dataclass
class Runtime:
    """One process's PageLedger: its adapters and its handlers, built once from the settings.

    The CLI and the server processes hold it; nothing below them does — each resource,
    handler and worker gets only the pieces it uses.
    """

    settings: Settings
    app: PageLedger
    writer: sa.Engine  # projections (and the throttle) write through this one
    reader: sa.Engine  # the API reads through this one
    followers: dict[str, Follower]
    clock: object = system_clock
    runner: ProjectionRunner | None = None
    _lock: RunnerLock | None = field(default=None, repr=False)
    # The threads that run background work when there is no Redis (see _background).
    _pools: list[ThreadPoolExecutor] = field(default_factory=list, repr=False)

    # --- adapters ---------------------------------------------------------------------------

    @property
    def default_schedule(self) -> CostSchedule:
        s = self.settings
        return CostSchedule(mono_page=s.default_mono_page, colour_page=s.default_colour_page,
                            duplex_discount_pct=s.default_duplex_discount_pct)

    @cached_property
    def spool(self) -> SpoolStore:
        return SpoolStore(self.settings.data_dir / "spool", max_bytes=self.settings.max_spool_mib << 20)

    @cached_property
    def printers(self) -> PrinterCache:
        return PrinterCache(self.app, self.default_schedule)

    @cached_property
    def site_settings(self) -> SiteSettingsReader:
        return SiteSettingsReader(self.app)

    @cached_property
    def users(self) -> UsersReadModel:
        return UsersReadModel(self.reader)

    @cached_property
    def pin_digest(self) -> PinDigester:
        return PinDigester(load_or_create_secret(self.settings.data_dir / "pin.key"))

    @cached_property
    def sessions(self) -> SessionSigner:
        return SessionSigner(load_or_create_secret(self.settings.data_dir / "session.key"),
                             self.settings.session_hours * 3600)

    @cached_property
    def session_revocations(self) -> SessionRevocations:
        return SessionRevocations(self.writer, self.reader)

    @cached_property
    def throttle(self) -> LoginThrottle:
        return LoginThrottle(self.writer)

    @cached_property
    def setup_code(self) -> SetupCode:
        return SetupCode(self.settings.data_dir / "setup-code")

    @cached_property
    def client_address(self) -> ClientAddress:
        return ClientAddress(self.settings.trusted_proxy_networks)

    @cached_property
    def directory_targets(self) -> DirectoryTargets:
        return DirectoryTargets(self.settings.setup_ldap_port_list, self.settings.setup_ldap_timeout)

    @cached_property
    def directory_config(self) -> DirectoryConfigFile:
        return DirectoryConfigFile(self.settings.data_dir / "directory.json")

    def directory(self) -> Directory:
        """The directory source the setup wizard chose; local accounts until then."""
        network_type, ldap = self.directory_config.load()
        if network_type == LDAP and ldap is not None:
            return LdapDirectory(ldap)
        return self.local_directory()

    def local_directory(self) -> LocalDirectory:
        repository = self.app.repository

        def lookup(login: str) -> LocalAccount | None:
            try:
                user: User = repository.get(self.app.user_id(LOCAL_SOURCE, login))
            except AggregateNotFoundError:
                return None
            if not user.password_hash:
                return None
            return LocalAccount(login=user.login, password_hash=user.password_hash, active=user.active,
                                profile=dict(user.profile))

        return LocalDirectory(lookup)

    @property
    def offline_policy(self) -> str:
        return self.settings.offline_policy

    def is_set_up(self) -> bool:
        return is_set_up(self.app)

    @cached_property
    def progress(self) -> ReadModelProgress:
        url = self.settings.resolved_database_url
        return ReadModelProgress(self.app, self.reader, {name: f.topics for name, f in self.followers.items()},
                                 runner_running=lambda: runner_lock_is_held(url, self.reader))

    @cached_property
    def report_sources(self) -> ReportSources:
        """What the reports read besides the read models: site settings, printers' schedules."""
        return ReportSources(settings=self.site_settings.values, schedule_of=self.printers.schedule_of)

    # --- scheduled reports (workers/scheduled_reports.py) ------------------------------------

    def check_report(self, name: str, parameters: dict) -> dict[str, list[str]]:
        """What is wrong with a report name and its parameters ({} when nothing), for a
        schedule being defined: checked by the same code that runs it."""
        spec = CATALOGUE.get(name)
        if spec is None:
            return {"name": [f"no report {str(name)[:64]!r}; the catalogue: {', '.join(CATALOGUE)}"]}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()):
            return {"parameters": ["each parameter is text"]}
        try:
            parse_parameters(parameters, site_timezone=str(self.site_settings["timezone"]), now=self.clock(),
                             allowed=spec.parameters)
        except ReportInputError as exc:
            return exc.errors
        return {}

    @cached_property
    def define_schedule(self) -> DefineSchedule:
        def owners(addresses: Sequence[str]) -> dict[str, str]:
            with self.reader.connect() as conn:
                return logins_of_addresses(conn, addresses)

        return DefineSchedule(self.app, self.check_report, self.clock, owners)

    @cached_property
    def remove_schedule(self) -> RemoveSchedule:
        return RemoveSchedule(self.app, self.clock)

    @cached_property
    def schedule_runs(self) -> ScheduleRuns:
        return ScheduleRuns(self.app, self.clock)

    def smtp_settings(self, recipients: tuple[str, ...]) -> SmtpSettings:
        """The SMTP server in force now: the site settings' (Settings → Mail, field by field) once
        their `smtp_host` is set, else this server's configuration (PAGELEDGER_SMTP_*)."""
        site = self.site_settings.values()
        if site["smtp_host"]:
            s = self.settings
            return SmtpSettings(host=str(site["smtp_host"]), port=int(site["smtp_port"]),
                                sender=str(site["smtp_sender"] or s.smtp_sender), recipients=recipients,
                                starttls=bool(site["smtp_starttls"]), username=str(site["smtp_username"]),
                                password=self.setting_sealer.open(str(site["smtp_password"])))
        s = self.settings
        return SmtpSettings(host=s.smtp_host, port=s.smtp_port, sender=s.smtp_sender, recipients=recipients,
                            starttls=bool(s.smtp_starttls), username=s.smtp_username, password=s.smtp_password)

    def mailer_to(self, recipients: tuple[str, ...]) -> SmtpMailer:
        return SmtpMailer(lambda: self.smtp_settings(recipients))

    @property
    def admin_recipients(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.settings.admin_emails.split(",") if a.strip())

    def scheduled_runs(self, pauses: tuple[float, ...] = (5.0, 30.0)) -> ScheduledRuns:
        tasks = {"task:licence-notice": lambda: f"named {len(self.send_denial_notice()())} denied users",
                 "task:user-sync": lambda: str(self.sync_users())}
        return ScheduledRuns(self.reader, self.schedule_runs, self.report_sources, self.mailer_to,
                             self.admin_recipients, tasks, self.clock, attempts=self.settings.schedule_attempts,
                             pauses=pauses)

    def ensure_task_schedules(self) -> None:
        """The daily licence notice (07:00) and user sync (03:00), on the schedule like any
        report; an admin may redefine their cron times."""
        for name, task, cron in (("licence-notice", "task:licence-notice", "0 7 * * *"),
                                 ("user-sync", "task:user-sync", "0 3 * * *")):
            if self.schedule_runs.load(name) is None:
                self.define_schedule(ScheduleDefinition(name, task, {}, "csv", cron, ()), by="pageledger")

    def _background(self, job: str, thread_name: str, execute: Callable[[str], None],
                    timeout: int = 4 * 3600) -> Callable[[str], None]:
        """How a background run is handed over: to `pageledger worker` on Redis (by the rq job
        `job`, sharing this data directory), else to one thread of this process."""
        if self.settings.redis_url:
            queue = Queue(queue_name(self.settings), connection=Redis.from_url(self.settings.redis_url))

            def enqueue(run_id: str) -> None:
                queue.enqueue(job, run_id, job_timeout=timeout, result_ttl=3600)
            return enqueue
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._pools.append(pool)

        def in_a_thread(run_id: str) -> None:
            pool.submit(execute, run_id)
        return in_a_thread

    @cached_property
    def background_reports(self) -> BackgroundReports:
        """Long reports run in the background."""
        return BackgroundReports(self.reader, self.report_sources,
                                 ReportRunStore(self.settings.data_dir / "report-runs"),
                                 self._background("pageledger.worker.run_report_job", "background-report",
                                                  lambda run_id: self.background_reports.execute(run_id), 3600))

    @cached_property
    def background_verifications(self) -> BackgroundVerifications:
        """`audit verify` started from the console, its state beside the reports' under the data directory."""
        return BackgroundVerifications(
            self.audit, ReportRunStore(self.settings.data_dir / "audit-verify-runs"),
            self._background("pageledger.worker.run_audit_verify_job", "audit-verify",
                             lambda run_id: self.background_verifications.execute(run_id)),
            lambda: int(self.app.recorder.max_notification_id() or 0))

    @cached_property
    def background_syncs(self) -> BackgroundSyncs:
        """A directory sync started from the console's Users page."""
        return BackgroundSyncs(self.sync_users, ReportRunStore(self.settings.data_dir / "directory-sync-runs"),
                               self._background("pageledger.worker.run_directory_sync_job", "directory-sync",
                                                lambda run_id: self.background_syncs.execute(run_id)))

    def denied_since(self, since: int) -> list[str]:
        with self.reader.connect() as conn:
            return denied_since(conn, since)

    # --- audit and privacy (docs/audit-privacy.md) ------------------------------------------

    def document_policy(self) -> str:
        """The `document_names` privacy setting now: keep, mask or omit."""
        return str(self.site_settings["document_names"])

    def unknown_colour_charge(self) -> str:
        """The `unknown_colour_charge` site setting now: colour or mono (pricing, commands.jobs)."""
        return str(self.site_settings["unknown_colour_charge"])

    @cached_property
    def event_history(self) -> EventHistory:
        return EventHistory(self.app, lambda name: shown_document(name, self.document_policy()))

    @cached_property
    def personal_keys(self) -> PersonalKeys:
        # The event store's own (its mapper stores logins as person numbers): one cache per
        # process, so an erasure here is seen at once by this process's writer and readers.
        return self.app.mapper.people

    @cached_property
    def erase_person(self) -> ErasePerson:
        url = self.settings.resolved_database_url
        events = self.app.recorder.events_table_name

        def jobs_follower() -> Follower:  # a fresh one: its log reader must not trust cached keys
            return Follower(self.app, self.writer, JobsProjection(), batch_size=5000, writes_lock=writes_lock(url))

        def users_follower() -> Follower:
            return Follower(self.app, self.writer, UsersProjection(), batch_size=5000, writes_lock=writes_lock(url))

        def compact(tables: list[str]) -> None:
            rewrite_freed_pages(url, [*tables, keys_table(events), erasures_table(events), people_table(events),
                                      subjects_table(events)])

        def seats_and_logins_follower() -> Follower:  # read models that name people by login
            return Follower(self.app, self.writer, [LicenceSeatsProjection(), SeatTenuresProjection(),
                                                    LoginAuditProjection(), AccessTokensProjection(),
                                                    ReportSchedulesProjection()],
                            batch_size=5000, writes_lock=writes_lock(url))

        def revoke_tokens(login: str) -> int:
            """Revoke the tokens that act for `login`: an erased person's token stops with them."""
            with self.writer.connect() as conn:
                ids = tokens_of_subject(conn, login)
            for token_id in ids:
                self.revoke_token(UUID(token_id))
            return len(ids)

        return ErasePerson(self.personal_keys, self.writer, jobs_follower, compact, self.clock,
                           users_follower=users_follower, subjects=self.app.mapper.subjects,
                           other_followers=[seats_and_logins_follower], revoke_tokens=revoke_tokens)

    @cached_property
    def audit(self) -> Audit:
        return Audit(self.app, self.reader, self.event_history, self.default_schedule,
                     scratch_dir=None if is_postgres(self.settings.resolved_database_url) else self.settings.data_dir)

    # --- handlers: one per use case ---------------------------------------------------------

    @cached_property
    def licensing(self) -> Licensing:
        return Licensing(self.app, public_key=public_key_from_setting(self.settings.licence_public_key),
                         identity=this_host(), clock=self.clock, activation_url=self.settings.activation_url,
                         inactive=self.users.inactive)

    @cached_property
    def track_jobs(self) -> TrackJobs:
        if self.settings.unknown_colour_charge != "colour":
            # The server setting of that name came first; the site setting (an admin's, with
            # its history) is what prices jobs now.
            log.warning("the server setting unknown_colour_charge=%s is no longer read: jobs whose colour is "
                        "not known are priced by the site setting unknown_colour_charge (now %s); set it in "
                        "the console's Settings or with 'pageledger settings set'",
                        self.settings.unknown_colour_charge, self.unknown_colour_charge())
        return TrackJobs(self.app, self.printers, gate=self.licensing.gate_jobs,
                         unknown_colour_charge=self.unknown_colour_charge, codes=self.pin_digest,
                         clock=self.clock, tell_code=self.release_code_mailer,
                         document_policy=self.document_policy, personal=self.personal_keys)

    @cached_property
    def hold_job(self) -> HoldJob:
        return HoldJob(self.app, self.spool)

    @cached_property
    def set_cost_schedule(self) -> SetCostSchedule:
        return SetCostSchedule(self.app, self.printers)

    @cached_property
    def change_setting(self) -> ChangeSetting:
        return ChangeSetting(self.app, self.site_settings, seal=self.setting_sealer.seal)

    @cached_property
    def setting_sealer(self) -> SettingSealer:
        return SettingSealer(load_or_create_secret(self.settings.data_dir / "settings.key"))

    @cached_property
    def set_secure_hold(self) -> SetSecureHold:
        return SetSecureHold(self.app, self.printers)

    # --- secure release (docs/secure-release.md) ----------------------------------------------

    @cached_property
    def release_throttle(self) -> LoginThrottle:
        """Wrong release codes, counted in the login throttle's table (keys of their own)."""
        return LoginThrottle(self.writer, per_login=5, per_address=20, window=900.0)

    def spools_in_use(self, digests, excluded: set[str]) -> set[str]:
        with self.reader.connect() as conn:
            return spools_in_use(conn, digests, excluded)

    @cached_property
    def spool_remover(self) -> SpoolRemover:
        return SpoolRemover(self.spool.remove, self.spools_in_use)

    @cached_property
    def release_code_mailer(self) -> ReleaseCodeMailer:
        mailer = SmtpMailer(lambda: self.smtp_settings(()))
        return ReleaseCodeMailer(self.email_of, mailer)

    def email_of(self, login: str) -> str:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(users_table.c.email).where(users_table.c.login_key == login.strip().lower())
                               .where(users_table.c.active == sa.true()).limit(1)).first()
        return row.email if row is not None else ""

    def pin_of(self, login: str) -> str:
        """The user's PIN digest: a queue in "predefined" code mode takes the user's own PIN."""
        with self.reader.connect() as conn:
            row = find_user(conn, login)
        return row.pin_digest if row is not None and row.active else ""

    def card_holder(self, card: str) -> str | None:
        """The login holding a card number (None: nobody)."""
        if not card:
            return None
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(users_table.c.login).where(users_table.c.card == card)
                               .where(users_table.c.active == sa.true()).limit(1)).first()
        return row.login if row is not None else None

    @cached_property
    def release_jobs(self) -> ReleaseJobs:
        return ReleaseJobs(self.app, self.pin_digest, self.pin_of, self.release_throttle, self.clock)

    @cached_property
    def delete_jobs(self) -> DeleteJobs:
        return DeleteJobs(self.app, self.spool_remover, self.clock)

    @cached_property
    def release_outcome(self) -> RecordReleaseOutcome:
        return RecordReleaseOutcome(self.app, self.printers, self.spool_remover, self.clock,
                                    unknown_colour_charge=self.unknown_colour_charge)

    @cached_property
    def expire_jobs(self) -> ExpireJobs:
        return ExpireJobs(self.app, self.spool_remover, self.clock)

    @cached_property
    def release_housekeeping(self) -> ReleaseHousekeeping:
        return ReleaseHousekeeping(self.reader, self.expire_jobs, self.spool, self.clock)

    def waiting_of(self, login: str, printer: str) -> list[str]:
        with self.reader.connect() as conn:
            return [j.job_id for j in waiting_jobs(conn, login, printer=printer) if j.has_data]

    def printer_names(self) -> list[str]:
        with self.reader.connect() as conn:
            return list(conn.execute(sa.select(printer_keys.c.name).order_by(printer_keys.c.name)).scalars())

    @cached_property
    def swipe_card(self) -> SwipeCard:
        return SwipeCard(self.app, self.card_holder, self.waiting_of, self.release_jobs, self.clock)

    @cached_property
    def record_printer_states(self) -> RecordPrinterStates:
        return RecordPrinterStates(self.app, self.clock)

    @cached_property
    def card_readers(self) -> CardReaders:
        return CardReaders(self.app, self.printer_names)

    @cached_property
    def held_data(self) -> HeldData:
        return HeldData(self.app, self.spool.open)

    @cached_property
    def set_release_settings(self) -> SetReleaseSettings:
        return SetReleaseSettings(self.app, self.printers)

    @cached_property
    def issue_token(self) -> IssueToken:
        return IssueToken(self.app)

    @cached_property
    def revoke_token(self) -> RevokeToken:
        return RevokeToken(self.app)

    @cached_property
    def sync_users(self) -> SyncUsers:
        return SyncUsers(self.app, self.directory, self.users, self.licensing, self.pin_digest, self.clock)

    @cached_property
    def set_user_active(self) -> SetUserActive:
        return SetUserActive(self.app, self.licensing, self.users, self.clock)

    @cached_property
    def add_local_user(self) -> AddLocalUser:
        return AddLocalUser(self.app, self.directory, self.licensing, self.clock)

    @cached_property
    def change_password(self) -> ChangePassword:
        return ChangePassword(self.app, self.clock)

    @cached_property
    def change_role(self) -> ChangeRole:
        return ChangeRole(self.app, self.users, self.clock)

    @cached_property
    def set_card(self) -> SetCard:
        return SetCard(self.app, self.users, self.clock)

    @cached_property
    def reset_pin(self) -> ResetPin:
        return ResetPin(self.app, self.users, self.pin_digest, self.clock)

    @cached_property
    def remove_user(self) -> RemoveUser:
        return RemoveUser(self.app, self.licensing, self.users, self.clock)

    @cached_property
    def log_in(self) -> LogIn:
        return LogIn(self.app, self.directory, self.licensing, self.throttle, self.clock)

    @cached_property
    def log_in_with_card(self) -> LogInWithCard:
        return LogInWithCard(self.app, self.users, self.pin_digest, self.licensing, self.throttle, self.clock)

    @cached_property
    def check_directory_connection(self) -> CheckDirectoryConnection:
        return CheckDirectoryConnection(_ldap_directory, self.directory_targets)

    @cached_property
    def complete_setup(self) -> CompleteSetup:
        return CompleteSetup(self.app, self.licensing, self.directory_config, _ldap_directory, self.clock,
                             self.directory_targets)

    # The legacy migration tool (tools/pa6_migrate) replays through these, as the live system records.
    @cached_property
    def import_legacy_users(self) -> ImportLegacyUsers:
        return ImportLegacyUsers(self.app, self.clock)

    @cached_property
    def replay_legacy_schedules(self) -> ReplayLegacySchedules:
        return ReplayLegacySchedules(self.app, self.printers)

    @cached_property
    def record_migrated_jobs(self) -> RecordMigratedJobs:
        return RecordMigratedJobs(self.app, self.printers, document_policy=self.document_policy,
                                  personal=self.personal_keys)

    def send_denial_notice(self) -> SendDenialNotice:
        s = self.settings
        recipients = tuple(a.strip() for a in s.admin_emails.split(",") if a.strip())
        mailer = SmtpMailer(lambda: self.smtp_settings(recipients))
        return SendDenialNotice(self.licensing, self.denied_since, mailer)

    # --- projections ------------------------------------------------------------------------

    def all_together(self, batch_size: int = 1000) -> Follower:
        """One follower for every projection: each page of the log is read and decoded once."""
        return Follower(self.app, self.writer, [f.projection for f in self.followers.values()], batch_size,
                        writes_lock(self.settings.resolved_database_url))

    def catch_up(self) -> None:
        """Bring every projection up to the head of the log, in this thread."""
        self.all_together().catch_up()

    def start_projections(self) -> None:
        """Run the projections in a background thread, if this process wins the runner lock.

        The runner polls (every `projection_poll_seconds`) rather than waking on each save:
        under load each pass then applies many events in one transaction, instead of paying a
        transaction's round trips for every single-job request.
        """
        self._lock = RunnerLock(self.settings.resolved_database_url)
        self.runner = ProjectionRunner([self.all_together()], self.settings.projection_poll_seconds,
                                       acquire=self._lock.acquire)
        self.runner.start()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.runner:
            self.runner.stop()
        # A background run still going (a verify, a report) reads through the engines closed
        # below: let it end first (closing SQLite under it crashed the process). Runs not yet
        # started stay queued, and are seen as stale later.
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._lock:
            self._lock.release()
        self.app.close()
        self.writer.dispose()
        self.reader.dispose()


def queue_name(settings: Settings) -> str:
    """The rq queue of this server: servers sharing a Redis never run each other's jobs."""
    return f"pageledger-{settings.server_id}"


def _ldap_directory(config: LdapConfig) -> Directory:
    return LdapDirectory(config)


def public_key_from_setting(value: str) -> Ed25519PublicKey:
    if not value:
        return shipped_public_key()
    if "BEGIN PUBLIC KEY" not in value and Path(value).is_file():
        value = Path(value).read_text()
    try:
        return load_public_key(value)
    except ValueError as exc:
        raise SettingsError(f"licence_public_key: {exc}") from None


def run_projections(settings: Settings, stop: threading.Event) -> None:
    """The projection runner as a process of its own (`pageledger up` starts one): it uses
    the second core instead of competing with the web workers for one interpreter lock."""
    runtime = build_runtime(settings, migrate=False)
    loop = None
    try:
        runtime.start_projections()
        log.info("projection runner started")
        if not settings.redis_url:  # no Redis: the scheduled reports run here (else `pageledger worker`)
            runtime.ensure_task_schedules()
            loop = ScheduleLoop(runtime.scheduled_runs().tick, settings.schedule_tick_seconds)
            loop.start()
            log.info("scheduled reports run in this process every %.0f s (no Redis configured)",
                     settings.schedule_tick_seconds)
        while not stop.is_set():  # sleeping, not waiting on a lock: signals can unwind it
            runtime.release_housekeeping.tick()  # held jobs' expiry and spool sweep, when due
            time.sleep(0.5)
    finally:
        if loop:
            loop.stop()
        runtime.close()
        log.info("projection runner stopped")


def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    url = settings.resolved_database_url
    if not is_postgres(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    with event_store_ddl_in_turn(url):
        app = PageLedger(env=event_store_env(url), server_id=settings.server_id,
                         privacy_secret=load_or_create_secret(settings.data_dir / "privacy.key"))
    writer = read_model_engine(url, writer=True)
    reader = read_model_engine(url)
    if migrate:
        migrations.upgrade(writer)
    lock = writes_lock(url)
    followers = {p.name: Follower(app, writer, p, writes_lock=lock) for p in all_projections()}
    return Runtime(settings, app, writer, reader, followers)
