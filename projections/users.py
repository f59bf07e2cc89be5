"""The users read model: who is known, from which source, active or not, with which card.

Also the queries commands need to keep cards and PINs unique across every user.
"""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID
from typing import Any, Sequence

import sqlalchemy as sa

from domain.users import User
from pageledger.codec import short_topic
from projections.follower import Projection
from projections.identity_tables import users

_TOPICS = (User.Imported, User.ProfileChanged, User.Activated, User.Deactivated, User.CardAssigned,
           User.PinChanged, User.RoleChanged, User.PasswordChanged)


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


def find_user(conn: sa.Connection, login: str) -> UserRow | None:
    """The user with this login in any source (the first imported wins if two sources share it)."""
    r = conn.execute(sa.select(users).where(users.c.login_key == login.strip().lower())
                     .order_by(users.c.imported_at).limit(1)).first()
    return _row(r) if r else None


def list_users(conn: sa.Connection, *, limit: int = 1000) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(users).order_by(users.c.login_key).limit(limit)).mappings()
    return [{"id": r["user_id"], "source": r["source"], "login": r["login"], "role": r["role"],
             "active": bool(r["active"]), "full_name": r["full_name"], "email": r["email"],
             "department": r["department"], "card": r["card"], "has_pin": bool(r["pin_digest"])} for r in rows]


def inactive_logins(conn: sa.Connection, login_keys: list[str]) -> set[str]:
    """Those of these (lower-cased) logins whose every account is Inactive."""
    if not login_keys:
        return set()
    rows = conn.execute(sa.select(users.c.login_key, sa.func.max(sa.case((users.c.active, 1), else_=0)))
                        .where(users.c.login_key.in_(login_keys)).group_by(users.c.login_key))
    return {key for key, any_active in rows if not any_active}
