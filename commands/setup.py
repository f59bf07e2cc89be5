"""The setup wizard's use cases: test the directory, then complete setup exactly once.

Completing setup checks everything before writing anything — the directory answers, the
licence verifies, the first admin's password is accepted by the chosen directory — and then
saves the Installation, the admin and the licence in one transaction. The Installation can be
created only once (the event store refuses a second version 1), so a finished wizard is closed
for good, even against two browsers racing through it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from eventsourcing.persistence import IntegrityError

from adapters.directory import (
    AuthenticationFailed, DirectoryError, DirectoryUnreachable, DirectoryUser, hash_password,
)
from adapters.event_store import PageLedger
from adapters.licence_keys import ActivationServiceError, LicenceRefused
from commands.licensing import Licensing
from commands.ports import Clock, Directory, DirectoryChoice
from commands.users import first_admin
from domain.installation import Installation, installation_id
from domain.licence import Licence
from domain.users import LOCAL_SOURCE, User

log = logging.getLogger("pageledger.setup")

NETWORK_TYPES = ("ldap", "local")
LICENCE_MODES = ("trial", "online", "file")


class SetupClosed(Exception):
    """Setup was completed before: the wizard cannot run again."""


class SetupRefused(ValueError):
    """A step's input was refused; `errors` names each field and why."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class SetupRequest:
    network_type: str
    ldap: Any  # LdapConfig when network_type == "ldap"
    licence_mode: str
    key: str
    company: str
    licence_file: str
    admin_login: str
    admin_password: str = field(repr=False)


def is_set_up(app: PageLedger) -> bool:
    return installation_id(app.server_id) in app.repository


LdapConnector = Callable[[Any], Directory]  # an LdapConfig -> the directory it describes

LDAP_PORTS = (389, 636, 3268, 3269)
NOT_CONNECTED = "could not connect to an LDAP server at this host and port"


@dataclass(frozen=True)
class DirectoryTargets:
    """Where the wizard may connect, and for how long: its caller is not yet anybody, so the
    server must not become their port scanner (any port, a closed one answering otherwise than
    an open one) nor wait on a silent host for long."""

    ports: tuple[int, ...] = LDAP_PORTS
    timeout: float = 3.0

    def bounded(self, ldap: Any) -> Any:
        """`ldap` (an LdapConfig) with the short timeout, or SetupRefused if its port is not allowed."""
        if ldap.effective_port not in self.ports:
            raise SetupRefused({"ldap_port": [f"the setup wizard connects only to the LDAP ports "
                                              f"{', '.join(map(str, self.ports))} (setting setup_ldap_ports)"]})
        return replace(ldap, timeout=min(ldap.timeout, self.timeout))


def _directory_refusal(exc: DirectoryError) -> SetupRefused:
    """An LDAP server's own answer is told (it helps to fix a bind DN); anything short of an
    LDAP conversation is one message, whatever the cause, so that it tells nothing about ports."""
    return SetupRefused({"ldap": [NOT_CONNECTED if isinstance(exc, DirectoryUnreachable) else str(exc)]})


class CheckDirectoryConnection:
    """Step 1's "test connection": bind with the service account and count users."""

    def __init__(self, connect: LdapConnector, targets: DirectoryTargets = DirectoryTargets()) -> None:
        self.connect = connect
        self.targets = targets

    def __call__(self, request: SetupRequest) -> str:
        if request.network_type == "local":
            return "local accounts need no connection"
        try:
            return self.connect(self.targets.bounded(request.ldap)).test_connection()
        except DirectoryError as exc:
            log.info("setup: directory test failed: %s", exc)
            raise _directory_refusal(exc) from None


class CompleteSetup:
    """Check everything, then save the Installation, the first admin and the licence at once."""

    def __init__(self, app: PageLedger, licensing: Licensing, choice: DirectoryChoice, connect: LdapConnector,
                 clock: Clock, targets: DirectoryTargets = DirectoryTargets()) -> None:
        self.app = app
        self.licensing = licensing
        self.choice = choice
        self.connect = connect
        self.clock = clock
        self.targets = targets

    def __call__(self, request: SetupRequest) -> Installation:
        app = self.app
        if is_set_up(app):
            raise SetupClosed()
        now = self.clock()
        admin_user = self._verified_admin(request, now)
        licence = self._licence(request)
        installation = Installation.complete(app.server_id, network_type=request.network_type,
                                             admin=admin_user.login, licence=request.licence_mode, now=now)
        staged = self.choice.stage(request.network_type, request.ldap)
        try:
            app.save(installation, admin_user, *([licence] if licence is not None else []))
        except IntegrityError:
            staged.discard()
            if is_set_up(app):
                raise SetupClosed() from None
            raise SetupRefused({"_schema": ["the server changed during setup (a licence or user was saved): "
                                            "submit again"]}) from None
        staged.commit()
        log.info("setup completed: %s directory, first admin %r, licence %s", request.network_type,
                 admin_user.login, request.licence_mode)
        return installation

    def _verified_admin(self, request: SetupRequest, now: int) -> User:
        """The first admin, checked against the chosen directory (or created as a local account)."""
        if request.network_type == "local":
            try:
                password_hash = hash_password(request.admin_password)
            except ValueError as exc:
                raise SetupRefused({"admin_password": [str(exc)]}) from None
            return first_admin(self.app, source=LOCAL_SOURCE, person=DirectoryUser(login=request.admin_login),
                               password_hash=password_hash, now=now)
        directory = self.connect(self.targets.bounded(request.ldap))  # the saved config keeps its timeout
        try:
            person = directory.authenticate(request.admin_login, request.admin_password)
        except AuthenticationFailed:
            raise SetupRefused({"admin_password": ["the directory did not accept this login and password"]}) from None
        except DirectoryError as exc:
            log.info("setup: directory check failed: %s", exc)
            raise _directory_refusal(exc) from None
        return first_admin(self.app, source=directory.source, person=person, password_hash="", now=now)

    def _licence(self, request: SetupRequest) -> Licence | None:
        licensing = self.licensing
        try:
            if request.licence_mode == "online":
                return licensing.prepared(licensing.verify_online(request.key, request.company))
            if request.licence_mode == "file":
                return licensing.prepared(licensing.verify_file(request.licence_file, request.company))
        except LicenceRefused as exc:
            raise SetupRefused({"key" if request.licence_mode == "online" else "licence_file": [str(exc)]}) from None
        except ActivationServiceError as exc:
            raise SetupRefused({"key": [str(exc)]}) from None
        if licensing.get() is None:  # normally installed at first start
            return licensing.prepared_trial()
        return None
