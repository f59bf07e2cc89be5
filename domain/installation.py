"""Installation: the fact that this server was set up, once, by whom, on which directory.

Created by the setup wizard's last step together with the first admin, in one save: the
event store's version check lets exactly one setup succeed, so the wizard can never be
replayed to take over an installed server.
"""
from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


def installation_id(server_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:installation")


class Installation(Aggregate):
    @event("SetupCompleted")
    def __init__(self, network_type: str, admin: str, licence: str, at: int) -> None:
        self.network_type = network_type  # "ldap" or "local"
        self.admin = admin  # login of the first admin
        self.licence = licence  # "trial" or the activation method
        self.at = at

    @classmethod
    def complete(cls, server_id: str, *, network_type: str, admin: str, licence: str, now: int) -> "Installation":
        return cls._create(cls.SetupCompleted, id=installation_id(server_id), network_type=network_type,
                           admin=admin, licence=licence, at=now)
