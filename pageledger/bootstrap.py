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
from adapters.runner_lock import RunnerLock, runner_lock_is_held
from adapters.setup_code import SetupCode
from adapters.session_revocations import SessionRevocations
from adapters.sessions import SessionSigner
from adapters.spool import SpoolStore
from adapters.stores import event_store_ddl_in_turn, event_store_env, is_postgres, read_model_engine, writes_lock
from adapters.throttle import LoginThrottle
from commands.access_tokens import IssueToken, RevokeToken
from commands.jobs import HoldJob, TrackJobs
from commands.licensing import Licensing
from commands.logins import LogIn
from commands.ports import Directory
from commands.printers import PrinterCache, SetCostSchedule, SetSecureHold
from api.client_address import ClientAddress
from commands.setup import CheckDirectoryConnection, CompleteSetup, DirectoryTargets, is_set_up
from commands.site_settings import ChangeSetting, SiteSettingsReader
from commands.users import AddLocalUser, ChangePassword, ChangeRole, RemoveUser, SetUserActive, SyncUsers
from domain.costs import CostSchedule
from domain.users import LOCAL_SOURCE, User, user_id
from pageledger.settings import Settings, SettingsError
from projections.follower import Follower, ProjectionRunner, ReadModelProgress, all_projections
from projections.licence_seats import denied_since
from projections.users import UsersReadModel
from workers.licence_notices import SendDenialNotice

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
                user: User = repository.get(user_id(LOCAL_SOURCE, login))
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

    def denied_since(self, since: int) -> list[str]:
        with self.reader.connect() as conn:
            return denied_since(conn, since)

    # --- handlers: one per use case ---------------------------------------------------------

    @cached_property
    def licensing(self) -> Licensing:
        return Licensing(self.app, public_key=public_key_from_setting(self.settings.licence_public_key),
                         identity=this_host(), clock=self.clock, activation_url=self.settings.activation_url,
                         inactive=self.users.inactive)

    @cached_property
    def track_jobs(self) -> TrackJobs:
        return TrackJobs(self.app, self.printers, gate=self.licensing.gate_jobs)

    @cached_property
    def hold_job(self) -> HoldJob:
        return HoldJob(self.app, self.spool)

    @cached_property
    def set_cost_schedule(self) -> SetCostSchedule:
        return SetCostSchedule(self.app, self.printers)

    @cached_property
    def change_setting(self) -> ChangeSetting:
        return ChangeSetting(self.app, self.site_settings)

    @cached_property
    def set_secure_hold(self) -> SetSecureHold:
        return SetSecureHold(self.app, self.printers)

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
    def remove_user(self) -> RemoveUser:
        return RemoveUser(self.app, self.licensing, self.users, self.clock)

    @cached_property
    def log_in(self) -> LogIn:
        return LogIn(self.app, self.directory, self.licensing, self.throttle, self.clock)

    @cached_property
    def check_directory_connection(self) -> CheckDirectoryConnection:
        return CheckDirectoryConnection(_ldap_directory, self.directory_targets)

    @cached_property
    def complete_setup(self) -> CompleteSetup:
        return CompleteSetup(self.app, self.licensing, self.directory_config, _ldap_directory, self.clock,
                             self.directory_targets)

    def send_denial_notice(self) -> SendDenialNotice:
        s = self.settings
        recipients = tuple(a.strip() for a in s.admin_emails.split(",") if a.strip())
        mailer = SmtpMailer(SmtpSettings(host=s.smtp_host, port=s.smtp_port, sender=s.smtp_sender,
                                         recipients=recipients))
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
        if self._lock:
            self._lock.release()
        self.app.close()
        self.writer.dispose()
        self.reader.dispose()


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
    try:
        runtime.start_projections()
        log.info("projection runner started")
        while not stop.is_set():  # sleeping, not waiting on a lock: signals can unwind it
            time.sleep(0.5)
    finally:
        runtime.close()
        log.info("projection runner stopped")


def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    url = settings.resolved_database_url
    if not is_postgres(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    with event_store_ddl_in_turn(url):
        app = PageLedger(env=event_store_env(url), server_id=settings.server_id)
    writer = read_model_engine(url, writer=True)
    reader = read_model_engine(url)
    if migrate:
        migrations.upgrade(writer)
    lock = writes_lock(url)
    followers = {p.name: Follower(app, writer, p, writes_lock=lock) for p in all_projections()}
    return Runtime(settings, app, writer, reader, followers)
