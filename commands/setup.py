"""The setup wizard's use cases: test the directory, then complete setup exactly once.

Completing setup checks everything before writing anything — the directory answers, the
licence verifies, the first admin's password is accepted by the chosen directory — and then
saves the Installation, the admin and the licence in one transaction. The Installation can be
created only once (the event store refuses a second version 1), so a finished wizard is closed
for good, even against two browsers racing through it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from uuid import uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from commands.application import PageLedger
from commands.licensing import Licensing
from domain.installation import Installation, installation_id
from domain.licence import Licence
from domain.users import LOCAL_SOURCE, ROLE_ADMIN, User, user_id
from pageledger.directory import (
    AuthenticationFailed, DirectoryError, DirectoryUser, LdapDirectory, hash_password,
)
from pageledger.licence_keys import ActivationServiceError, LicenceRefused

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


def test_connection(request: SetupRequest) -> str:
    """Step 1's "test connection": bind with the service account and count users."""
    if request.network_type == "local":
        return "local accounts need no connection"
    try:
        return LdapDirectory(request.ldap).test_connection()
    except DirectoryError as exc:
        raise SetupRefused({"ldap": [str(exc)]}) from None


def complete_setup(app: PageLedger, licensing: Licensing, request: SetupRequest, *, directory_file: Path,
                   clock: Callable[[], int]) -> Installation:
    if is_set_up(app):
        raise SetupClosed()
    now = clock()
    admin, admin_user = _verified_admin(app, request, now)
    licence = _licence(licensing, request)
    installation = Installation.complete(app.server_id, network_type=request.network_type, admin=admin.login,
                                         licence=request.licence_mode, now=now)
    pending = directory_file.with_name(f"{directory_file.name}.pending-{uuid4().hex}")
    _write_private(pending, request)
    try:
        app.save(installation, admin_user, *([licence] if licence is not None else []))
    except IntegrityError:
        pending.unlink(missing_ok=True)
        if is_set_up(app):
            raise SetupClosed() from None
        raise SetupRefused({"_schema": ["the server changed during setup (a licence or user was saved): "
                                        "submit again"]}) from None
    pending.replace(directory_file)
    log.info("setup completed: %s directory, first admin %r, licence %s", request.network_type, admin.login,
             request.licence_mode)
    return installation


def _verified_admin(app: PageLedger, request: SetupRequest, now: int) -> tuple[DirectoryUser, User]:
    """The first admin, checked against the chosen directory (or created as a local account)."""
    if request.network_type == "local":
        try:
            password_hash = hash_password(request.admin_password)
        except ValueError as exc:
            raise SetupRefused({"admin_password": [str(exc)]}) from None
        try:
            user = app.repository.get(user_id(LOCAL_SOURCE, request.admin_login))
        except AggregateNotFoundError:
            user = User.import_(source=LOCAL_SOURCE, login=request.admin_login, profile={}, now=now, role=ROLE_ADMIN)
        user.change_role(ROLE_ADMIN, now)
        user.set_password_hash(password_hash, now)
        return DirectoryUser(login=user.login), user
    directory = LdapDirectory(request.ldap)
    try:
        person = directory.authenticate(request.admin_login, request.admin_password)
    except AuthenticationFailed:
        raise SetupRefused({"admin_password": ["the directory did not accept this login and password"]}) from None
    except DirectoryError as exc:
        raise SetupRefused({"ldap": [str(exc)]}) from None
    try:
        user = app.repository.get(user_id(directory.source, person.login))
    except AggregateNotFoundError:
        user = User.import_(source=directory.source, login=person.login, profile=person.profile, now=now,
                            role=ROLE_ADMIN)
    user.change_role(ROLE_ADMIN, now)
    if not user.active:
        user.activate(now)
    return person, user


def _licence(licensing: Licensing, request: SetupRequest) -> Licence | None:
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
        return Licence.install_trial(licensing.id, now=licensing.clock())
    return None


def _write_private(path: Path, request: SetupRequest) -> None:
    from pageledger.identity import ldap_config_to_dict
    import json

    network: dict[str, Any] = {"type": request.network_type}
    if request.network_type == "ldap":
        network["ldap"] = ldap_config_to_dict(request.ldap)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(network, f, indent=2)
