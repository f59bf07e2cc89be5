"""Wiring of identity and licensing for one runtime: licence, directory source, sessions, PINs.

The directory the setup wizard chose is kept in ``<data_dir>/directory.json`` (mode 0600),
not in the event log, because it holds the service account's bind password and an event can
never be erased. The log records that setup happened and which kind of directory, not secrets.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.application import AggregateNotFoundError

from commands.licensing import Licensing, system_clock
from domain.users import LOCAL_SOURCE, User, user_id
from pageledger.directory import AttributeMap, Directory, LdapConfig, LdapDirectory, LocalAccount, LocalDirectory
from pageledger.licence_keys import load_public_key, shipped_public_key, this_host
from pageledger.pins import PinDigester, load_or_create_secret
from pageledger.sessions import LoginThrottle, SessionSigner
from pageledger.settings import SettingsError
from projections.users import inactive_logins

if TYPE_CHECKING:
    from pageledger.bootstrap import Runtime


def public_key_from_setting(value: str) -> Ed25519PublicKey:
    if not value:
        return shipped_public_key()
    if "BEGIN PUBLIC KEY" not in value and Path(value).is_file():
        value = Path(value).read_text()
    try:
        return load_public_key(value)
    except ValueError as exc:
        raise SettingsError(f"licence_public_key: {exc}") from None


def ldap_config_from_dict(data: dict[str, Any]) -> LdapConfig:
    """An LdapConfig from the wizard's (or the file's) plain values; ValueError names bad fields."""
    values = dict(data)
    values["base_dns"] = tuple(values.get("base_dns") or ())
    values["login_attributes"] = tuple(values.get("login_attributes") or ())
    attributes = values.pop("attributes", None)
    if attributes:
        values["attributes"] = AttributeMap(**attributes)
    return LdapConfig(**values)


def ldap_config_to_dict(config: LdapConfig) -> dict[str, Any]:
    data = asdict(config)
    data["base_dns"] = list(config.base_dns)
    data["login_attributes"] = list(config.login_attributes)
    return data


class Identity:
    """Identity services of one runtime, created on first use."""

    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = system_clock
        self._lock = threading.Lock()

    @cached_property
    def licensing(self) -> Licensing:
        reader = self.runtime.reader

        def inactive(logins: list[str]) -> set[str]:
            with reader.connect() as conn:
                return inactive_logins(conn, logins)

        return Licensing(self.runtime.app, public_key=public_key_from_setting(self.settings.licence_public_key),
                         identity=this_host(), clock=self.clock, activation_url=self.settings.activation_url,
                         inactive=inactive)

    @cached_property
    def pin_digest(self) -> PinDigester:
        return PinDigester(load_or_create_secret(self.settings.data_dir / "pin.key"))

    @cached_property
    def session_secret(self) -> bytes:
        return load_or_create_secret(self.settings.data_dir / "session.key")

    @cached_property
    def sessions(self) -> "SessionSigner":
        return SessionSigner(self.session_secret, self.settings.session_hours * 3600)

    @cached_property
    def throttle(self) -> LoginThrottle:
        return LoginThrottle(self.runtime.writer)

    @property
    def directory_file(self) -> Path:
        return self.settings.data_dir / "directory.json"

    def save_directory(self, network: dict[str, Any]) -> None:
        """Keep the chosen directory's settings (with its bind password) readable by the server only."""
        path = self.directory_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(network, f, indent=2)
        tmp.replace(path)

    def directory(self) -> Directory:
        """The configured directory source; local accounts until the wizard chose another."""
        try:
            network = json.loads(self.directory_file.read_text())
        except FileNotFoundError:
            network = {"type": LOCAL_SOURCE}
        if network.get("type") == "ldap":
            return LdapDirectory(ldap_config_from_dict(network["ldap"]))
        return self.local_directory()

    def local_directory(self) -> LocalDirectory:
        repository = self.runtime.app.repository

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
