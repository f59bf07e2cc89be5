"""The ports of the commands: what a use case needs from the world, as small Protocols.

Commands never build these; `pageledger.bootstrap` passes the adapters (adapters/) or read-model
queries (projections/) that fit them into each handler's constructor, and tests can pass real
ones or fast ones without patching anything.
"""
from __future__ import annotations

from typing import Any, BinaryIO, Iterator, Mapping, Protocol, Sequence

from adapters.directory import DirectoryUser


class Clock(Protocol):
    """Now, as int µs since the Unix epoch, UTC (domain.units)."""

    def __call__(self) -> int: ...


class Directory(Protocol):
    """A directory source: where users come from and where their passwords are checked
    (adapters.directory: LdapDirectory, LocalDirectory)."""

    source: str

    def test_connection(self) -> str: ...

    def users(self) -> Iterator[DirectoryUser]: ...

    def authenticate(self, login: str, password: str) -> DirectoryUser: ...


class LoginThrottle(Protocol):
    """Failed logins per login and per address (adapters.throttle). `reserve` counts an attempt
    as failed before its password is checked, atomically: `release` it if it was not."""

    def reserve(self, login: str, address: str) -> Any: ...  # .retry_after: seconds, 0 = go ahead

    def release(self, reservation: Any) -> None: ...

    def retry_after(self, login: str, address: str) -> int: ...

    def failed(self, login: str, address: str) -> None: ...

    def succeeded(self, login: str) -> None: ...


class SpoolWriter(Protocol):
    """Where a held job's data is kept (adapters.spool)."""

    max_bytes: int

    def write(self, stream: BinaryIO, *, sha256: str, size: int | None = None) -> tuple[str, int]: ...


class KnownUser(Protocol):
    user_id: str
    login: str
    role: str
    active: bool


class UserIndex(Protocol):
    """What user commands read from the users read model (projections.users.UsersReadModel):
    a user saved a moment ago may not be in it yet."""

    def of_source(self, source: str) -> Sequence[KnownUser]: ...

    def card_holders(self) -> Mapping[str, str]: ...

    def pin_holders(self) -> Mapping[str, str]: ...

    def card_holder(self, card: str) -> str | None: ...  # the user_id holding this card, Active or not

    def pin_holder(self, pin_digest: str) -> str | None: ...

    def active_admins(self) -> Sequence[KnownUser]: ...


class StagedDirectoryChoice(Protocol):
    def commit(self) -> None: ...

    def discard(self) -> None: ...


class DirectoryChoice(Protocol):
    """Where the setup wizard's directory (with its bind password) is kept, outside the event
    log (adapters.directory_config.DirectoryConfigFile)."""

    def stage(self, network_type: str, ldap: object | None) -> StagedDirectoryChoice: ...
