"""Which directory the setup wizard chose, kept in ``<data_dir>/directory.json`` (mode 0600).

Not in the event log: it holds the service account's bind password, and an event can never be
erased. The log records that setup happened and which kind of directory, not secrets.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any
from uuid import uuid4

from adapters.directory import AttributeMap, LdapConfig

LOCAL = "local"
LDAP = "ldap"


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


class StagedFile:
    """A choice written beside the real file, put in place only by `commit` (after the setup
    it belongs to was saved), or removed by `discard`."""

    def __init__(self, pending: Path, final: Path) -> None:
        self.pending = pending
        self.final = final

    def commit(self) -> None:
        self.pending.replace(self.final)

    def discard(self) -> None:
        self.pending.unlink(missing_ok=True)


class DirectoryConfigFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> tuple[str, LdapConfig | None]:
        """The network type and, for LDAP, its settings; local accounts until the wizard chose."""
        try:
            network = json.loads(self.path.read_text())
        except FileNotFoundError:
            return LOCAL, None
        if network.get("type") == LDAP:
            return LDAP, ldap_config_from_dict(network["ldap"])
        return LOCAL, None

    def save(self, network_type: str, ldap: LdapConfig | None) -> None:
        self.stage(network_type, ldap).commit()

    def stage(self, network_type: str, ldap: object | None) -> StagedFile:
        network: dict[str, Any] = {"type": network_type}
        if network_type == LDAP:
            assert isinstance(ldap, LdapConfig)
            network["ldap"] = ldap_config_to_dict(ldap)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pending = self.path.with_name(f"{self.path.name}.pending-{uuid4().hex}")
        fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(network, f, indent=2)
        return StagedFile(pending, self.path)
