"""The users read model: who is known, from which source, active or not, with which card.

A removed account keeps its row (Inactive, reason "removed", no card, PIN or password), so
its sessions and jobs are refused like an Inactive user's; the lists leave it out.

Also the queries commands need to keep cards and PINs unique across every user. Personal
fields (name, e-mail, department) are plain columns here because a read model can always be
rebuilt without them; PINs appear only as keyed digests.
"""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID
from typing import Any, Sequence

import sqlalchemy as sa

from domain.users import REMOVED, ROLE_ADMIN, User
from adapters.codec import short_topic
from projections.follower import Projection, metadata

users = sa.Table(
    "users", metadata,
    sa.Column("user_id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("login", sa.String(255), nullable=False),
    sa.Column("login_key", sa.String(255), nullable=False),  # lower-cased login
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("deactivated_reason", sa.String(32), nullable=False),
    sa.Column("card", sa.String(64), nullable=False),
    sa.Column("pin_digest", sa.String(64), nullable=False),
    sa.Column("has_password", sa.Boolean, nullable=False),
    sa.Column("full_name", sa.String(255), nullable=False),
    sa.Column("email", sa.String(255), nullable=False),
    sa.Column("department", sa.String(255), nullable=False),
    sa.Column("imported_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("source", "login_key", name="uq_users_source_login"),
    sa.Index("ix_users_login_key", "login_key"),
    sa.Index("ix_users_card", "card"),
    sa.Index("ix_users_pin_digest", "pin_digest"),
)

_TOPICS = (User.Imported, User.ProfileChanged, User.Activated, User.Deactivated, User.CardAssigned,
           User.PinChanged, User.RoleChanged, User.PasswordChanged, User.Removed, User.Readded)


class UsersProjection(Projection):
    name = "users"
    topics = tuple(short_topic(t) for t in _TOPICS)
    tables = (users,)

    def apply(self, conn: sa.Connection, events: Sequence[tuple[int, Any]]) -> None:
        for _, e in events:
            uid = str(UUID(str(e.originator_id)))
            if e.event_class is User.Imported:
                conn.execute(users.insert().values(
                    user_id=uid, source=e.source, login=e.login, login_key=e.login.lower(), role=e.role,
                    active=True, deactivated_reason="", card="", pin_digest="", has_password=False,
                    full_name=e.profile.get("full_name", ""), email=e.profile.get("email", ""),
                    department=e.profile.get("department", ""), imported_at=e.at))
                continue
            values: dict[str, Any]
            if e.event_class is User.ProfileChanged:
                values = {k: v for k, v in e.profile.items() if k in ("full_name", "email", "department")}
            elif e.event_class is User.Activated:
                values = {"active": True, "deactivated_reason": ""}
            elif e.event_class is User.Deactivated:
                values = {"active": False, "deactivated_reason": e.reason}
            elif e.event_class is User.CardAssigned:
                values = {"card": e.card}
            elif e.event_class is User.PinChanged:
                values = {"pin_digest": e.pin_digest}
            elif e.event_class is User.RoleChanged:
                values = {"role": e.role}
            elif e.event_class is User.PasswordChanged:
                values = {"has_password": True}
            elif e.event_class is User.Removed:
                values = {"active": False, "deactivated_reason": REMOVED, "card": "", "pin_digest": "",
                          "has_password": False}
            elif e.event_class is User.Readded:
                values = {"active": True, "deactivated_reason": "", "role": e.role, "card": "", "pin_digest": "",
                          "has_password": False, **{k: e.profile.get(k, "") for k in ("full_name", "email",
                                                                                     "department")}}
            else:
                continue
            if values:
                conn.execute(users.update().where(users.c.user_id == uid).values(**values))


@dataclass(frozen=True)
class UserRow:
    user_id: str
    source: str
    login: str
    role: str
    active: bool
    deactivated_reason: str
    card: str
    pin_digest: str


def _row(r: Any) -> UserRow:
    return UserRow(r.user_id, r.source, r.login, r.role, bool(r.active), r.deactivated_reason, r.card, r.pin_digest)


def users_of_source(conn: sa.Connection, source: str) -> list[UserRow]:
    return [_row(r) for r in conn.execute(sa.select(users).where(users.c.source == source))]


def card_holders(conn: sa.Connection) -> dict[str, str]:
    """card -> user_id of every user holding a card."""
    return {r.card: r.user_id for r in conn.execute(sa.select(users.c.card, users.c.user_id).where(users.c.card != ""))}


def pin_holders(conn: sa.Connection) -> dict[str, str]:
    return {r.pin_digest: r.user_id
            for r in conn.execute(sa.select(users.c.pin_digest, users.c.user_id).where(users.c.pin_digest != ""))}


def holder_of(conn: sa.Connection, column: str, value: str) -> str | None:
    """The user_id of a user (Active or not) whose `card` or `pin_digest` is `value`."""
    if not value:
        return None
    return conn.execute(sa.select(users.c.user_id).where(users.c[column] == value).limit(1)).scalar()


def users_with_login(conn: sa.Connection, login: str) -> list[UserRow]:
    """The users (one per source, removed accounts left out) whose login is `login`."""
    return [_row(r) for r in conn.execute(
        sa.select(users).where(users.c.login_key == login.strip().lower())
        .where(users.c.deactivated_reason != REMOVED).order_by(users.c.source))]


def logins_of_addresses(conn: sa.Connection, addresses: Sequence[str]) -> dict[str, str]:
    """Lower-cased e-mail address -> the login of the user whose address it is (of several, the
    least login), for the addresses of `addresses` that belong to a user (removed ones too)."""
    wanted = sorted({a.strip().lower() for a in addresses if a.strip()})
    if not wanted:
        return {}
    found: dict[str, str] = {}
    rows = conn.execute(sa.select(sa.func.lower(users.c.email), users.c.login)
                        .where(sa.func.lower(users.c.email).in_(wanted)).order_by(users.c.login))
    for email, login in rows:
        found.setdefault(email, login)
    return found


def find_user(conn: sa.Connection, login: str) -> UserRow | None:
    """The user with this login in any source (the first imported wins if two sources share it)."""
    r = conn.execute(sa.select(users).where(users.c.login_key == login.strip().lower())
                     .order_by(users.c.imported_at).limit(1)).first()
    return _row(r) if r else None


@dataclass(frozen=True)
class UserListing:
    """A user as the admin's list shows them (never the PIN, only whether there is one)."""

    user_id: str
    source: str
    login: str
    role: str
    active: bool
    full_name: str
    email: str
    department: str
    card: str
    has_pin: bool
    has_password: bool


def list_users(conn: sa.Connection, *, limit: int = 1000) -> list[UserListing]:
    """Every user but removed accounts, by login."""
    rows = conn.execute(sa.select(users).where(users.c.deactivated_reason != REMOVED)
                        .order_by(users.c.login_key).limit(limit)).mappings()
    return [UserListing(r["user_id"], r["source"], r["login"], r["role"], bool(r["active"]), r["full_name"],
                        r["email"], r["department"], r["card"], bool(r["pin_digest"]), bool(r["has_password"]))
            for r in rows]


def inactive_logins(conn: sa.Connection, login_keys: list[str]) -> set[str]:
    """Those of these (lower-cased) logins whose every account is Inactive."""
    if not login_keys:
        return set()
    rows = conn.execute(sa.select(users.c.login_key, sa.func.max(sa.case((users.c.active, 1), else_=0)))
                        .where(users.c.login_key.in_(login_keys)).group_by(users.c.login_key))
    return {key for key, any_active in rows if not any_active}


def active_roles(conn: sa.Connection, login_key: str) -> set[str] | None:
    """The roles of the Active accounts with this (lower-cased) login: empty if none is Active,
    None if no account has it (yet: a user imported at their first login a moment ago)."""
    found = conn.execute(sa.select(users.c.role, users.c.active).where(users.c.login_key == login_key)).all()
    if not found:
        return None
    return {role for role, active in found if active}


def active_admins(conn: sa.Connection) -> list[UserRow]:
    return [_row(r) for r in conn.execute(sa.select(users).where(users.c.role == ROLE_ADMIN).where(users.c.active))]


class UsersReadModel:
    """The users read model's queries, each on a connection of its own (what commands.ports.
    UserIndex asks for, and the licence's check of Inactive users)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def of_source(self, source: str) -> list[UserRow]:
        with self.engine.connect() as conn:
            return users_of_source(conn, source)

    def card_holders(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return card_holders(conn)

    def pin_holders(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return pin_holders(conn)

    def card_holder(self, card: str) -> str | None:
        with self.engine.connect() as conn:
            return holder_of(conn, "card", card)

    def pin_holder(self, pin_digest: str) -> str | None:
        with self.engine.connect() as conn:
            return holder_of(conn, "pin_digest", pin_digest)

    def active_admins(self) -> list[UserRow]:
        with self.engine.connect() as conn:
            return active_admins(conn)

    def inactive(self, login_keys: list[str]) -> set[str]:
        with self.engine.connect() as conn:
            return inactive_logins(conn, login_keys)
