"""User use cases: sync from the directory, set Active/Inactive, add, re-password, re-role and
remove local accounts, the first admin. The one module that writes User aggregates.

`sync_users` makes PageLedger's users match the directory: new people are Imported, changed
profiles recorded as ProfileChanged, people gone from the directory Deactivated (which frees
their licence seat), and people who come back Activated again. Cards and PINs must identify
exactly one person: a value claimed by two users is reported as a clash and given to neither
newcomer (a user who already held it keeps it) — never silently merged. A card or PIN an admin
set (SetCard, ResetPin) is kept when the directory gives that user none; a value the directory
does give replaces it.

A sync only ever changes users of the source it reads, and local accounts belong to no
directory: PageLedger itself keeps them, so a sync of the local source has nothing to import
or deactivate. Nothing — a sync, an admin — may take away the last active admin (see
`AdminGuard`): a server nobody can administer is recoverable only with a bearer token.

Which users a source already has, and who holds which card, is read from the users read
model: a user imported a moment ago may not be there yet, which is harmless (the aggregate
itself is always checked before importing) except that a person imported and removed between
two syncs within the projection's lag is deactivated one sync later.
"""
from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from adapters.directory import DirectoryUser, hash_password
from adapters.event_store import PageLedger
from commands.conflicts import retry_on_conflict
from commands.licensing import Licensing
from commands.ports import Clock, Directory, UserIndex
from commands.validation import InvalidRequest
from domain.users import (
    BY_ADMIN, LEFT_DIRECTORY, LOCAL_SOURCE, REMOVED, ROLE_ADMIN, ROLE_USER, ROLES, User, UserError, card_problem,
    pin_problem,
)

log = logging.getLogger("pageledger.users")


@dataclass(frozen=True)
class Clash:
    """One card number or PIN claimed by more than one user."""

    field: str  # "card" or "pin"
    logins: tuple[str, ...]
    value: str = ""  # the card number; never the PIN

    def describe(self) -> str:
        what = f"card {self.value}" if self.field == "card" else "the same PIN"
        return f"{what} is claimed by {', '.join(self.logins)}: not assigned to anyone new"


NOTHING_TO_SYNC = ("local accounts are kept by PageLedger itself, not by a directory: a sync of the local source "
                   "has nothing to import or deactivate (manage them with pageledger users add, passwd, role "
                   "and remove, or /api/v1/users)")


@dataclass
class SyncReport:
    imported: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    clashes: list[Clash] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # gone from the directory, kept active: the last active admin
    note: str = ""  # why nothing was synced at all

    def summary(self) -> str:
        if self.note:
            return self.note
        text = (f"{len(self.imported)} imported, {len(self.updated)} updated, {len(self.deactivated)} deactivated, "
                f"{len(self.reactivated)} reactivated, {len(self.clashes)} clashes")
        if self.kept:
            text += f", {len(self.kept)} kept active (last active admin)"
        return text

    def kept_warnings(self) -> list[str]:
        return [f"{login} is no longer in the directory but is the last active admin: kept active; make another "
                f"user admin, then sync again" for login in self.kept]

    def warnings(self) -> list[str]:
        return [*(c.describe() for c in self.clashes), *self.kept_warnings()]

    def as_json(self) -> dict[str, Any]:
        return {"imported": self.imported, "updated": self.updated, "deactivated": self.deactivated,
                "reactivated": self.reactivated, "clashes": [c.describe() for c in self.clashes],
                "kept": self.kept, "warnings": self.warnings(), "summary": self.summary()}


class SyncUsers:
    """Import and update every user the directory lists; deactivate those it no longer lists."""

    def __init__(self, app: PageLedger, directory: Callable[[], Directory], index: UserIndex,
                 licensing: Licensing, pin_digest: Callable[[str], str], clock: Clock) -> None:
        self.app = app
        self.directory = directory  # the configured source, looked up at each sync
        self.index = index
        self.licensing = licensing
        self.pin_digest = pin_digest
        self.clock = clock
        self.deactivate = DeactivateUser(app, licensing, AdminGuard(app, index), clock)

    def __call__(self, progress: Callable[[float, str], None] | None = None) -> SyncReport:
        """`progress(fraction, phase)`, when given, hears how far the sync is (the console's
        background sync shows it)."""
        tell = progress or (lambda fraction, phase: None)
        directory = self.directory()
        source = directory.source
        if source == LOCAL_SOURCE:
            log.info("user sync (%s): %s", source, NOTHING_TO_SYNC)
            return SyncReport(note=NOTHING_TO_SYNC)
        tell(0.0, f"reading the users of the directory ({source})")
        found = list(directory.users())  # a DirectoryError stops the sync before anything is written
        report = SyncReport()
        known = {row.login.lower(): row for row in self.index.of_source(source)}
        cards = dict(self.index.card_holders())
        pins = dict(self.index.pin_holders())

        by_login: dict[str, DirectoryUser] = {}
        for du in found:
            by_login.setdefault(du.login.lower(), du)  # a login listed twice is one person
        ids = {login: self.app.user_id(source, du.login) for login, du in by_login.items()}
        batch_ids = {str(uid) for uid in ids.values()}

        digests = {login: self.pin_digest(du.pin) for login, du in by_login.items()}
        card_owner = _unique_owner("card", {login: du.card for login, du in by_login.items()}, cards, batch_ids,
                                   source, report)
        pin_owner = _unique_owner("pin", digests, pins, batch_ids, source, report)
        self._keep_admins_values(card_owner, cards, {login: du.card for login, du in by_login.items()}, "card",
                                 source, report)
        self._keep_admins_values(pin_owner, pins, digests, "pin", source, report)

        total = len(by_login)
        tell(0.1, f"{total:,} users read from the directory")
        for done, (login, du) in enumerate(sorted(by_login.items())):
            tell(0.1 + 0.85 * done / max(1, total), f"{done:,} of {total:,} users saved")
            uid = ids[login]

            def attempt(du: DirectoryUser = du, uid: UUID = uid, login: str = login) -> tuple[bool, bool, bool]:
                now = self.clock()
                try:
                    user: User = self.app.repository.get(uid)
                    is_new = False
                except AggregateNotFoundError:
                    user = User.import_(source=source, login=du.login, profile=du.profile, now=now, role=ROLE_USER,
                                        aggregate_id=uid)
                    is_new = True
                changed = False if is_new else user.change_profile(du.profile, now)
                came_back = not user.active and user.deactivated_reason == LEFT_DIRECTORY and user.activate(now)
                card = du.card if card_owner.get(du.card) == login else (user.card if du.card == user.card else None)
                if card is not None:
                    changed |= user.assign_card(card, now)
                elif du.card == "" and user.card and not user.card_by:  # an admin's card stays
                    changed |= user.assign_card("", now)
                digest = digests[login]
                if (digest == "" and not user.pin_by) or pin_owner.get(digest) == login:
                    changed |= user.change_pin(digest, now)
                self.app.save(user)  # imported or changed concurrently (another sync): load it and redo
                return is_new, came_back, changed

            is_new, came_back, changed = retry_on_conflict(attempt, what=f"save user {du.login}")
            if is_new:
                report.imported.append(du.login)
            elif came_back:
                report.reactivated.append(du.login)
            elif changed:
                report.updated.append(du.login)

        tell(0.95, "setting Inactive those the directory no longer lists")
        for login, row in sorted(known.items()):
            if login not in by_login and row.active:
                try:
                    if self.deactivate(UUID(row.user_id), reason=LEFT_DIRECTORY):
                        report.deactivated.append(row.login)
                except LastActiveAdmin:
                    report.kept.append(row.login)
        for warning in report.warnings():
            log.warning("user sync (%s): %s", source, warning)
        log.info("user sync (%s): %s", source, report.summary())
        return report


    def _keep_admins_values(self, owners: dict[str, str], holders: dict[str, str], wanted: dict[str, str],
                            field_name: str, source: str, report: SyncReport) -> None:
        """A card or PIN an admin set stays theirs unless the directory gives them one of their own:
        another user the directory gives it to is reported as a clash instead (owners changed in
        place)."""
        for value, login in list(owners.items()):
            holder = holders.get(value)
            if holder is None or holder == str(self.app.user_id(source, login)):
                continue  # nobody holds it, or its own owner does: nothing to load (most users, on a re-sync)
            try:
                other: User = self.app.repository.get(UUID(holder))
            except AggregateNotFoundError:
                continue
            set_by_admin = other.card_by if field_name == "card" else other.pin_by
            theirs = wanted.get(other.login.lower(), "")
            if other.login.lower() == login or not set_by_admin or (theirs and owners.get(theirs) ==
                                                                     other.login.lower()):
                continue  # the holder's own, or the directory gives the holder a value of their own
            del owners[value]
            report.clashes.append(Clash(field_name, tuple(sorted((login, other.login))),
                                        value if field_name == "card" else ""))


def _unique_owner(field_name: str, wanted: dict[str, str], holders: dict[str, str], batch_ids: set[str],
                  source: str, report: SyncReport) -> dict[str, str]:
    """value -> the one login of this sync that may hold it; clashes recorded in the report.

    A value listed for two people of this directory clashes; so does a value already held by
    a user outside this sync (another source), who keeps it.
    """
    claimants: dict[str, list[str]] = defaultdict(list)
    for login, value in wanted.items():
        if value:
            claimants[value].append(login)
    owners: dict[str, str] = {}
    for value, logins in claimants.items():
        outside = holders.get(value)
        if outside is not None and outside not in batch_ids:
            report.clashes.append(Clash(field_name, tuple(sorted(logins)) + ("a user of another source",),
                                        value if field_name == "card" else ""))
            continue
        if len(logins) > 1:
            report.clashes.append(Clash(field_name, tuple(sorted(logins)), value if field_name == "card" else ""))
            continue
        owners[value] = logins[0]
    return owners


class LastActiveAdmin(UserError):
    """The change would leave no active admin user."""


class AdminGuard:
    """Refuses to take the admin role or Active away from the last active admin.

    Other admins are found in the users read model and each is confirmed on its aggregate, so
    an admin demoted or deactivated a moment ago (still listed) does not count, and one made
    admin a moment ago (not listed yet) is missed: the guard errs on the side of refusing. Two
    admins demoting each other in the same instant can both pass it: the read model is the
    only view across users, and no aggregate holds all admins.
    """

    def __init__(self, app: PageLedger, index: UserIndex) -> None:
        self.app = app
        self.index = index

    def check(self, user: User, *, what: str) -> None:
        """Raise LastActiveAdmin if `user` is an active admin and no other one is."""
        if not (user.active and user.role == ROLE_ADMIN):
            return
        if not any(self._still_active_admin(UUID(row.user_id)) for row in self.index.active_admins()
                   if UUID(row.user_id) != user.id):
            raise LastActiveAdmin(f"{user.login} is the last active admin: cannot {what}; make another user "
                                  f"admin first")

    def _still_active_admin(self, uid: UUID) -> bool:
        try:
            other: User = self.app.repository.get(uid)
        except AggregateNotFoundError:
            return False
        return other.active and other.role == ROLE_ADMIN


class NoSuchUser(LookupError):
    """No user has this id, or the account was removed."""


def _existing(app: PageLedger, uid: UUID) -> User:
    """The user `uid` as stored now; NoSuchUser if unknown or removed."""
    try:
        user: User = app.repository.get(uid)
    except AggregateNotFoundError:
        raise NoSuchUser(f"no user {uid}") from None
    if user.removed:
        raise NoSuchUser(f"{user.login} was removed")
    return user


class DeactivateUser:
    """Set a user Inactive and free their seat, in one transaction (both or neither); never
    the last active admin (LastActiveAdmin)."""

    def __init__(self, app: PageLedger, licensing: Licensing, guard: AdminGuard, clock: Clock) -> None:
        self.app = app
        self.licensing = licensing
        self.guard = guard
        self.clock = clock

    def __call__(self, uid: UUID, *, reason: str) -> bool:
        def attempt() -> bool:
            user = _existing(self.app, uid)
            self.guard.check(user, what="set them Inactive")
            if not user.deactivate(self.clock(), reason):
                return False
            self.licensing.save_releasing_seat(user, user.login, reason)
            return True

        return retry_on_conflict(attempt, what="deactivate the user")


class SetUserActive:
    """The admin's Active/Inactive switch. Inactive frees the seat; Active takes none until used."""

    def __init__(self, app: PageLedger, licensing: Licensing, index: UserIndex, clock: Clock) -> None:
        self.app = app
        self.licensing = licensing
        self.clock = clock
        self.deactivate = DeactivateUser(app, licensing, AdminGuard(app, index), clock)

    def __call__(self, uid: UUID, active: bool) -> bool:
        """Raises NoSuchUser for an unknown or removed user, LastActiveAdmin for the last admin."""
        if not active:
            return self.deactivate(uid, reason=BY_ADMIN)

        def attempt() -> tuple[bool, str]:
            user = _existing(self.app, uid)
            if not user.activate(self.clock()):
                return False, user.login
            self.app.save(user)
            return True, user.login

        changed, login = retry_on_conflict(attempt, what="activate the user")
        if changed:
            self.licensing.forget_held(login)
        return changed


class LoginTaken(UserError):
    """A local account with this login exists (and was not removed)."""


class NoLocalAccounts(UserError):
    """This server's users come from a directory: a local account could never log in."""


class AddLocalUser:
    """A local account (no directory): its password is kept only as an argon2 hash.

    Only where local accounts are the configured source: on an LDAP server nobody could log
    in with one. A removed account's login can be added again (User.Readded)."""

    def __init__(self, app: PageLedger, directory: Callable[[], Directory], licensing: Licensing,
                 clock: Clock) -> None:
        self.app = app
        self.directory = directory
        self.licensing = licensing
        self.clock = clock

    def __call__(self, *, login: str, password: str, role: str, profile: dict) -> User:
        """Raises LoginTaken, NoLocalAccounts, UserError (a bad login or role) or ValueError (the
        password is too short), before anything is written."""
        source = self.directory().source
        if source != LOCAL_SOURCE:
            raise NoLocalAccounts(f"this server's users come from its directory {source!r}: add them there, "
                                  f"then sync")
        password_hash = hash_password(password)  # slow on purpose: once, outside the retries
        uid = self.app.user_id(LOCAL_SOURCE, login)

        def attempt() -> User:
            now = self.clock()
            try:
                user: User = self.app.repository.get(uid)
            except AggregateNotFoundError:
                user = User.import_(source=LOCAL_SOURCE, login=login, profile=profile, now=now, role=role,
                                    aggregate_id=uid)
            else:
                if not user.removed:
                    raise LoginTaken(f"a local user {user.login!r} already exists")
                user.add_again(role=role, profile=profile, now=now)
            user.set_password_hash(password_hash, now)
            self.app.save(user)  # another add of this login saved first: load it and decide again
            return user

        user = retry_on_conflict(attempt, what=f"add the local user {login.strip()}")
        self.licensing.forget_held(user.login)  # Inactive until a moment ago, if it was removed
        return user


class ChangePassword:
    """An admin sets a local account's password (kept only as an argon2 hash)."""

    def __init__(self, app: PageLedger, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    def __call__(self, uid: UUID, password: str) -> None:
        """Raises NoSuchUser, UserError (a directory user) or ValueError (too short)."""
        _existing(self.app, uid)  # an unknown user is told so before the slow hash
        password_hash = hash_password(password)

        def attempt() -> None:
            user = _existing(self.app, uid)
            user.set_password_hash(password_hash, self.clock())
            self.app.save(user)

        retry_on_conflict(attempt, what="change the password")


class ChangeRole:
    """An admin gives a user another role (any source: roles are PageLedger's, never the
    directory's); never demotes the last active admin."""

    def __init__(self, app: PageLedger, index: UserIndex, clock: Clock) -> None:
        self.app = app
        self.guard = AdminGuard(app, index)
        self.clock = clock

    def __call__(self, uid: UUID, role: str, by: str = "") -> bool:
        """False if the user had this role already. Raises NoSuchUser, LastActiveAdmin, UserError.
        `by`: the admin (login, or "cli")."""
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}")

        def attempt() -> bool:
            user = _existing(self.app, uid)
            if role != user.role:
                self.guard.check(user, what=f"make them {role}")
            if not user.change_role(role, self.clock(), by=by):
                return False
            self.app.save(user)
            return True

        return retry_on_conflict(attempt, what="change the role")


class RemoveUser:
    """An admin removes a local account: User.Removed, and its seat freed in the same
    transaction; never the last active admin."""

    def __init__(self, app: PageLedger, licensing: Licensing, index: UserIndex, clock: Clock) -> None:
        self.app = app
        self.licensing = licensing
        self.guard = AdminGuard(app, index)
        self.clock = clock

    def __call__(self, uid: UUID) -> User:
        """Raises NoSuchUser (also when removed already), LastActiveAdmin, UserError (a directory user)."""
        def attempt() -> User:
            user = _existing(self.app, uid)
            self.guard.check(user, what="remove them")
            user.remove(self.clock())
            self.licensing.save_releasing_seat(user, user.login, REMOVED)
            return user

        return retry_on_conflict(attempt, what="remove the user")


class CardTaken(UserError):
    """Another user holds this card number: a swipe must identify exactly one person."""


class PinTaken(UserError):
    """Another user has this PIN: a PIN identifies its owner at a release station."""


def _held_by_another(app: PageLedger, holder_id: str | None, uid: UUID, holds: Callable[[User], bool]) -> User | None:
    """The other user the read model names as holder, if their aggregate confirms it (they may
    have given it up a moment ago)."""
    if holder_id is None or UUID(holder_id) == uid:
        return None
    try:
        other: User = app.repository.get(UUID(holder_id))
    except AggregateNotFoundError:
        return None
    return other if holds(other) else None


class SetCard:
    """An admin sets a user's card number (any source), or clears it with "". A card number held
    by another user is refused: a swipe releases its holder's jobs, so it must name one person.

    The holder is looked up in the users read model and confirmed on its aggregate, as the
    directory sync does; two admins giving one card to two users in the same instant can both
    pass (no aggregate holds every card). A directory sync keeps the admin's card unless the
    directory gives that user a card of its own (docs/identity.md)."""

    def __init__(self, app: PageLedger, index: UserIndex, clock: Clock) -> None:
        self.app = app
        self.index = index
        self.clock = clock

    def __call__(self, uid: UUID, card: str, *, by: str) -> bool:
        """False if the user held this card already. Raises InvalidRequest (a bad card number),
        NoSuchUser, CardTaken (409 `card`), before anything is written."""
        card = card.strip(" ").upper()  # as agent.card_readers sends it: hex in capitals
        problem = card_problem(card)
        if problem:
            raise InvalidRequest({"card": [problem]})
        if card:
            other = _held_by_another(self.app, self.index.card_holder(card), uid, lambda u: u.card == card)
            if other is not None:
                raise CardTaken(f"card {card} is held by {other.login}: clear it there first")

        def attempt() -> bool:
            user = _existing(self.app, uid)
            if not user.assign_card(card, self.clock(), by=by):
                return False
            self.app.save(user)
            return True

        changed = retry_on_conflict(attempt, what="set the card")
        log.info("%s set the card of user %s", by, uid, extra={"by": by})  # never the card: it releases jobs
        return changed


@dataclass(frozen=True)
class PinReset:
    login: str
    generated: str = field(default="", repr=False)  # the PIN made here, shown once to the admin; else ""


GENERATED_PIN_LENGTH = 6
_GENERATION_TRIES = 20


class ResetPin:
    """An admin sets a user's PIN, or has one generated (`secrets`, GENERATED_PIN_LENGTH digits)
    and shown to them once. Only its keyed digest is kept (adapters.pins); the PIN is never
    logged nor put in an event. Where a queue's release code is "predefined", the release code
    is this PIN: one reset covers both. A PIN another user has is refused (PinTaken) when typed,
    and never generated."""

    def __init__(self, app: PageLedger, index: UserIndex, pin_digest: Callable[[str], str], clock: Clock) -> None:
        self.app = app
        self.index = index
        self.pin_digest = pin_digest
        self.clock = clock

    def __call__(self, uid: UUID, pin: str | None, *, by: str) -> PinReset:
        """`pin` None generates one. Raises InvalidRequest (a bad PIN), NoSuchUser, PinTaken,
        before anything is written."""
        if pin is not None:
            problem = pin_problem(pin)
            if problem:
                raise InvalidRequest({"pin": [problem]})
            digest = self.pin_digest(pin)
            if self._taken(digest, uid):
                raise PinTaken("another user has this PIN: choose another, or leave it empty to have one generated")
            generated = ""
        else:
            for _ in range(_GENERATION_TRIES):
                generated = "".join(secrets.choice("0123456789") for _ in range(GENERATED_PIN_LENGTH))
                digest = self.pin_digest(generated)
                if not self._taken(digest, uid):
                    break
            else:  # pragma: no cover - a million PINs and nearly all of them taken
                raise PinTaken("could not generate a PIN no other user has: type one")

        def attempt() -> str:
            user = _existing(self.app, uid)
            if user.change_pin(digest, self.clock(), by=by):
                self.app.save(user)
            return user.login

        login = retry_on_conflict(attempt, what="reset the PIN")
        log.info("%s reset the PIN of %s", by, login, extra={"by": by})
        return PinReset(login, generated)

    def _taken(self, digest: str, uid: UUID) -> bool:
        return _held_by_another(self.app, self.index.pin_holder(digest), uid,
                                lambda u: u.pin_digest == digest) is not None


def ensure_directory_user(app: PageLedger, source: str, du: DirectoryUser, *, role: str, clock: Clock) -> User:
    """The User for someone the directory just vouched for (a login), imported if new."""
    uid = app.user_id(source, du.login)

    def attempt() -> User:
        try:
            user: User = app.repository.get(uid)
        except AggregateNotFoundError:
            user = User.import_(source=source, login=du.login, profile=du.profile, now=clock(), role=role,
                                aggregate_id=uid)
        else:
            if role != ROLE_USER:  # promotion (the setup wizard's first admin); never a demotion here
                user.change_role(role, clock())
        app.save(user)
        return user

    return retry_on_conflict(attempt, what=f"record user {du.login}")


def first_admin(app: PageLedger, *, source: str, person: DirectoryUser, password_hash: str, now: int) -> User:
    """The setup wizard's first administrator, not yet saved (setup saves it with the
    installation): imported if new, made admin and active; a local account gets its password."""
    try:
        user: User = app.repository.get(uid := app.user_id(source, person.login))
    except AggregateNotFoundError:
        user = User.import_(source=source, login=person.login, profile=person.profile, now=now, role=ROLE_ADMIN,
                            aggregate_id=uid)
    if user.removed:
        user.add_again(role=ROLE_ADMIN, profile=person.profile, now=now)
    user.change_role(ROLE_ADMIN, now)
    if password_hash:
        user.set_password_hash(password_hash, now)
    if not user.active:
        user.activate(now)
    return user


class ImportLegacyUsers:
    """Import the people of a legacy database as the directory sync imports them (User.Imported,
    role user) into the configured directory source, saved with `progress` (the migration's
    record) in one transaction. A login PageLedger already knows is left as it is."""

    def __init__(self, app: PageLedger, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    def __call__(self, source: str, people: list[tuple[str, dict]], progress: object) -> list[str]:
        """`people`: (login, profile) pairs. Returns the logins imported."""
        now = self.clock()
        seen: set[str] = set()
        users: list[User] = []
        for login, profile in people:
            key = login.strip().lower()
            uid = self.app.user_id(source, login)
            if key in seen or uid in self.app.repository:
                continue
            seen.add(key)
            users.append(User.import_(source=source, login=login, profile=profile, now=now, role=ROLE_USER,
                                      aggregate_id=uid))
        self.app.record(*users, progress)  # type: ignore[arg-type]
        return [u.login for u in users]
