"""User: a person PageLedger counts, imported from a directory source or kept locally.

The id is derived from the directory source and the login (`keyed_user_id` under the site's
privacy key; `user_id`, a uuid5, for users created before), so importing the same person twice
finds the same aggregate.

Personal fields (full name, e-mail, department) travel in one `profile` mapping, kept last in
each event, apart from the countable facts (login, source, active, role): a later per-user key
can encrypt or shred them without touching what reports count. Secrets never enter an event
in clear: a PIN arrives as a keyed digest, a local password as an argon2 hash.

Field order of each event is its stored order (events are stored as arrays): append new
fields at the end, never reorder or remove.

Removing a local account cannot erase it from the log: `Removed` is one more fact. A removed
account is Inactive, keeps no password, card or PIN (so it cannot log in, and its card and
PIN are free for others), and refuses every change but being added again, which `Readded`
records on the same aggregate (the id comes from the login) with a new role and profile.
Directory users are removed in their directory, never here (a sync then deactivates them).
"""
from __future__ import annotations

import hashlib
import hmac
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

PROFILE_FIELDS = ("full_name", "email", "department")

ROLE_ADMIN = "admin"
ROLE_AUDITOR = "auditor"
ROLE_USER = "user"
ROLE_AGENT = "agent"
ROLES = (ROLE_ADMIN, ROLE_AUDITOR, ROLE_USER, ROLE_AGENT)

LEFT_DIRECTORY = "left_directory"  # reason of a Deactivated the directory sync records
BY_ADMIN = "admin"
REMOVED = "removed"  # why a removed account is Inactive (read models show it as the reason)

LOCAL_SOURCE = "local"

# What an admin may set as a card number: what a card reader's swipe can carry (letters and
# digits, as agent.card_readers normalises them; the users read model holds 64 characters).
CARD_MAX_LENGTH = 64
# A PIN an admin sets: digits, as long as a release code may be (domain.printers, 4 to 12).
PIN_MIN_LENGTH, PIN_MAX_LENGTH = 4, 12


def card_problem(card: str) -> str:
    """Why `card` cannot be a card number ("" when it can; "" itself clears a card)."""
    if len(card) > CARD_MAX_LENGTH:
        return f"at most {CARD_MAX_LENGTH} characters"
    if not all(c.isascii() and c.isalnum() for c in card):
        return "a card number is letters and digits only, as the card reader sends it"
    return ""


def pin_problem(pin: str) -> str:
    """Why `pin` cannot be a PIN ("" when it can)."""
    if not (pin.isascii() and pin.isdigit()) or not PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH:
        return f"{PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} digits"
    return ""


def user_id(source: str, login: str) -> UUID:
    """The id users created before keyed ids got (a uuid5 of the source and the login, which
    are case-insensitive): anyone can compute it from a guessed login. Still how they are found."""
    return uuid5(NAMESPACE_URL, f"pageledger:user:{source}:{login.strip().lower()}")


def keyed_user_id(secret: bytes, source: str, login: str) -> UUID:
    """The id of a user created from keyed ids on: HMAC-SHA-256 of the source and the login
    under the site's privacy key, as a version-8 UUID (never equal to a uuid5), so a copy of
    the database cannot test a guessed login against it once the person is erased. Which of the
    two ids a user has is the event store's to find out (adapters.event_store.PageLedger.user_id)."""
    digest = bytearray(hmac.new(secret, f"pageledger:user:{source}:{login.strip().lower()}".encode("utf-8"),
                                hashlib.sha256).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return UUID(bytes=bytes(digest))


class UserError(ValueError):
    """A change the user's current state does not allow."""


def clean_profile(profile: dict) -> dict[str, str]:
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise UserError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    return {k: str(profile.get(k) or "") for k in PROFILE_FIELDS}


class User(Aggregate):
    """A person who prints, releases jobs or administers PageLedger."""

    @event("Imported")
    def __init__(self, source: str, login: str, role: str, at: int, profile: dict) -> None:
        self.source = source
        self.login = login
        self.role = role
        self.active = True
        self.deactivated_reason = ""
        self.imported_at = at
        self.card = ""
        self.card_by = ""  # the admin who set the card; "" when the directory sync did
        self.pin_digest = ""
        self.pin_by = ""  # the admin who reset the PIN; "" when the directory sync did
        self.password_hash = ""
        self.profile = dict(profile)
        self.removed = False

    @classmethod
    def import_(cls, *, source: str, login: str, profile: dict, now: int, role: str = ROLE_USER,
                aggregate_id: UUID | None = None) -> "User":
        """Record a person found in a directory source (or created locally) for the first time.
        `aggregate_id`: the event store's id for the login (keyed); the uuid5 `user_id` without it."""
        login = login.strip()
        if not login:
            raise UserError("a user needs a login")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}")
        return cls._create(cls.Imported, id=aggregate_id or user_id(source, login), source=source, login=login,
                           role=role, at=now, profile=clean_profile(profile))

    def change_profile(self, profile: dict, now: int) -> bool:
        """Take the directory's current profile; records only the fields that changed."""
        new = clean_profile(profile)
        changed = {k: v for k, v in new.items() if self.profile.get(k, "") != v}
        if not changed:
            return False
        self._profile_changed(at=now, profile=changed)
        return True

    @event("ProfileChanged")
    def _profile_changed(self, at: int, profile: dict) -> None:
        self.profile.update(profile)

    def activate(self, now: int) -> bool:
        self._refuse_if_removed()
        if self.active:
            return False
        self._activated(at=now)
        return True

    @event("Activated")
    def _activated(self, at: int) -> None:
        self.active = True
        self.deactivated_reason = ""

    def deactivate(self, now: int, reason: str) -> bool:
        """Set Inactive (an admin did, or the user left the directory); the seat is freed by the caller."""
        if not self.active:
            return False
        self._deactivated(at=now, reason=reason)
        return True

    @event("Deactivated")
    def _deactivated(self, at: int, reason: str) -> None:
        self.active = False
        self.deactivated_reason = reason

    def assign_card(self, card: str, now: int, by: str = "") -> bool:
        """Uniqueness across users is checked by the caller, which can see every user. `by`: the
        admin who set it ("" for the directory sync, which may then clear it again)."""
        self._refuse_if_removed()
        card = card.strip()
        # The sync never takes over an admin's card; clearing an empty card changes nothing.
        if card == self.card and (not by or self.card_by or not card):
            return False
        self._card_assigned(at=now, card=card, by=by)
        return True

    class CardAssigned(Aggregate.Event):
        """`by` was appended (events stored before it are the directory sync's)."""

        at: int
        card: str
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(CardAssigned)
    def _card_assigned(self, at: int, card: str, by: str = "") -> None:
        self.card = card
        self.card_by = by if card else ""

    def change_pin(self, pin_digest: str, now: int, by: str = "") -> bool:
        """`pin_digest`: the keyed digest (adapters.pins), never the PIN. `by`: the admin who reset
        it ("" for the directory sync)."""
        self._refuse_if_removed()
        if pin_digest == self.pin_digest and (not by or self.pin_by):
            return False
        self._pin_changed(at=now, pin_digest=pin_digest, by=by)
        return True

    class PinChanged(Aggregate.Event):
        """`by` was appended (events stored before it are the directory sync's)."""

        at: int
        pin_digest: str
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(PinChanged)
    def _pin_changed(self, at: int, pin_digest: str, by: str = "") -> None:
        self.pin_digest = pin_digest
        self.pin_by = by if pin_digest else ""

    def change_role(self, role: str, now: int, by: str = "") -> bool:
        """`by`: the admin who changed it ("" for the setup and the directory sync)."""
        self._refuse_if_removed()
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}")
        if role == self.role:
            return False
        self._role_changed(at=now, role=role, by=by)
        return True

    class RoleChanged(Aggregate.Event):
        """`by` was appended (events stored before it say "": not recorded)."""

        at: int
        role: str
        by: str = ""

        APPENDED_DEFAULTS = {"by": ""}

    @event(RoleChanged)
    def _role_changed(self, at: int, role: str, by: str = "") -> None:
        self.role = role

    def set_password_hash(self, password_hash: str, now: int) -> None:
        """Local accounts only: the argon2 hash of the password, never the password."""
        if self.source != LOCAL_SOURCE:
            raise UserError("only local accounts keep a password; directory users bind to the directory")
        self._refuse_if_removed()
        if not password_hash.startswith("$argon2"):
            raise UserError("a password must be stored as an argon2 hash")
        self._password_changed(at=now, password_hash=password_hash)

    @event("PasswordChanged")
    def _password_changed(self, at: int, password_hash: str) -> None:
        self.password_hash = password_hash

    def remove(self, now: int) -> bool:
        """Local accounts only (a directory's users are removed in the directory). The caller
        frees the seat and keeps the last active admin; False if removed already."""
        if self.source != LOCAL_SOURCE:
            raise UserError(f"{self.login} comes from the directory {self.source!r}: remove them there (the next "
                            f"sync sets them Inactive), or set them Inactive")
        if self.removed:
            return False
        self._removed(at=now)
        return True

    @event("Removed")
    def _removed(self, at: int) -> None:
        self.removed = True
        self.active = False
        self.deactivated_reason = REMOVED
        self.password_hash = ""
        self.card = ""
        self.card_by = ""
        self.pin_digest = ""
        self.pin_by = ""

    def add_again(self, *, role: str, profile: dict, now: int) -> None:
        """A removed local account created again under its login: Active, with a new role and
        profile, no card or PIN; the caller sets its password."""
        if not self.removed:
            raise UserError(f"a user {self.login!r} already exists")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}")
        self._readded(at=now, role=role, profile=clean_profile(profile))

    @event("Readded")
    def _readded(self, at: int, role: str, profile: dict) -> None:
        self.removed = False
        self.active = True
        self.deactivated_reason = ""
        self.role = role
        self.profile = dict(profile)

    def _refuse_if_removed(self) -> None:
        if self.removed:
            raise UserError(f"{self.login} was removed: add the account again first")
