"""User use cases: sync from the directory, set Active/Inactive, create local accounts.

`sync_users` makes PageLedger's users match the directory: new people are Imported, changed
profiles recorded as ProfileChanged, people gone from the directory Deactivated (which frees
their licence seat), and people who come back Activated again. Cards and PINs must identify
exactly one person: a value claimed by two users is reported as a clash and given to neither
newcomer (a user who already held it keeps it) — never silently merged.

Which users a source already has, and who holds which card, is read from the users read
model: a user imported a moment ago may not be there yet, which is harmless (the aggregate
itself is always checked before importing) except that a person imported and removed between
two syncs within the projection's lag is deactivated one sync later.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from commands.application import PageLedger
from commands.licensing import Licensing
from domain.users import BY_ADMIN, LEFT_DIRECTORY, LOCAL_SOURCE, ROLE_USER, User, UserError, user_id
from pageledger.directory import Directory, DirectoryUser, hash_password
from projections.users import card_holders, pin_holders, users_of_source

log = logging.getLogger("pageledger.users")

MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class Clash:
    """One card number or PIN claimed by more than one user."""

    field: str  # "card" or "pin"
    logins: tuple[str, ...]
    value: str = ""  # the card number; never the PIN

    def describe(self) -> str:
        what = f"card {self.value}" if self.field == "card" else "the same PIN"
        return f"{what} is claimed by {', '.join(self.logins)}: not assigned to anyone new"


@dataclass
class SyncReport:
    imported: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    clashes: list[Clash] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.imported)} imported, {len(self.updated)} updated, {len(self.deactivated)} deactivated, "
                f"{len(self.reactivated)} reactivated, {len(self.clashes)} clashes")


def sync_users(app: PageLedger, directory: Directory, reader: sa.Engine, licensing: Licensing,
               pin_digest: Callable[[str], str], clock: Callable[[], int]) -> SyncReport:
    """Import and update every user the directory lists; deactivate those it no longer lists."""
    found = list(directory.users())  # a DirectoryError stops the sync before anything is written
    source = directory.source
    report = SyncReport()
    with reader.connect() as conn:
        known = {row.login.lower(): row for row in users_of_source(conn, source)}
        cards = card_holders(conn)
        pins = pin_holders(conn)

    by_login: dict[str, DirectoryUser] = {}
    for du in found:
        by_login.setdefault(du.login.lower(), du)  # a login listed twice is one person
    batch_ids = {str(user_id(source, login)) for login in by_login}

    digests = {login: pin_digest(du.pin) for login, du in by_login.items()}
    card_owner = _unique_owner("card", {login: du.card for login, du in by_login.items()}, cards, batch_ids,
                               source, report)
    pin_owner = _unique_owner("pin", digests, pins, batch_ids, source, report)

    for login, du in sorted(by_login.items()):
        uid = user_id(source, du.login)
        for _ in range(MAX_ATTEMPTS):
            now = clock()
            try:
                user: User = app.repository.get(uid)
                is_new = False
            except AggregateNotFoundError:
                user = User.import_(source=source, login=du.login, profile=du.profile, now=now, role=ROLE_USER)
                is_new = True
            changed = False if is_new else user.change_profile(du.profile, now)
            came_back = not user.active and user.deactivated_reason == LEFT_DIRECTORY and user.activate(now)
            card = du.card if card_owner.get(du.card) == login else (user.card if du.card == user.card else None)
            if card is not None:
                changed |= user.assign_card(card, now)
            elif du.card == "" and user.card:
                changed |= user.assign_card("", now)
            digest = digests[login]
            if digest == "" or pin_owner.get(digest) == login:
                changed |= user.change_pin(digest, now)
            try:
                app.save(user)
            except IntegrityError:
                continue  # imported or changed concurrently (another sync): load it and redo
            break
        else:
            raise RuntimeError(f"could not save user {du.login}: it kept changing")
        if is_new:
            report.imported.append(du.login)
        elif came_back:
            report.reactivated.append(du.login)
        elif changed:
            report.updated.append(du.login)

    for login, row in sorted(known.items()):
        if login not in by_login and row.active:
            if deactivate_user(app, licensing, UUID(row.user_id), reason=LEFT_DIRECTORY, clock=clock):
                report.deactivated.append(row.login)
    for clash in report.clashes:
        log.warning("user sync (%s): %s", source, clash.describe())
    log.info("user sync (%s): %s", source, report.summary())
    return report


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


def deactivate_user(app: PageLedger, licensing: Licensing, uid: UUID, *, reason: str,
                    clock: Callable[[], int]) -> bool:
    """Set a user Inactive and free their seat, in one transaction (both or neither)."""
    for _ in range(MAX_ATTEMPTS):
        user: User = app.repository.get(uid)
        now = clock()
        if not user.deactivate(now, reason):
            return False
        licence = licensing.get()
        if licence is not None:
            licence.release_seat(user.login, now, reason)
        try:
            app.save(user, *([licence] if licence is not None else []))
        except IntegrityError:
            continue
        licensing.forget_held(user.login)
        return True
    raise RuntimeError("could not deactivate the user: it kept changing")


def set_user_active(app: PageLedger, licensing: Licensing, uid: UUID, active: bool, *,
                    clock: Callable[[], int]) -> bool:
    """The admin's Active/Inactive switch. Inactive frees the seat; Active takes none until used."""
    if not active:
        return deactivate_user(app, licensing, uid, reason=BY_ADMIN, clock=clock)
    for _ in range(MAX_ATTEMPTS):
        user: User = app.repository.get(uid)
        if not user.activate(clock()):
            return False
        try:
            app.save(user)
        except IntegrityError:
            continue
        licensing.forget_held(user.login)
        return True
    raise RuntimeError("could not activate the user: it kept changing")


def create_local_user(app: PageLedger, *, login: str, password: str, role: str, profile: dict,
                      clock: Callable[[], int]) -> User:
    """A local account (no directory): its password is kept only as an argon2 hash."""
    now = clock()
    user = User.import_(source=LOCAL_SOURCE, login=login, profile=profile, now=now, role=role)
    user.set_password_hash(hash_password(password), now)
    try:
        app.save(user)
    except IntegrityError:
        raise UserError(f"a local user {login!r} already exists") from None
    return user


def ensure_directory_user(app: PageLedger, source: str, du: DirectoryUser, *, role: str,
                          clock: Callable[[], int]) -> User:
    """The User for someone the directory just vouched for (a login), imported if new."""
    uid = user_id(source, du.login)
    for _ in range(MAX_ATTEMPTS):
        try:
            user: User = app.repository.get(uid)
        except AggregateNotFoundError:
            user = User.import_(source=source, login=du.login, profile=du.profile, now=clock(), role=role)
        else:
            if role != ROLE_USER:  # promotion (the setup wizard's first admin); never a demotion here
                user.change_role(role, clock())
        try:
            app.save(user)
        except IntegrityError:
            continue
        return user
    raise RuntimeError("could not record the user: it kept changing")
