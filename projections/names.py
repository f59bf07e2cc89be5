"""Small int ids for the names that many rows repeat: logins, printer queues, client hosts,
printing applications.

Read models store these ids instead of the strings (a jobs row stays narrow). The key tables
are shared by every projection that names users, printers or hosts, and are never emptied by
a rebuild, so an id once handed out keeps meaning the same name.
"""
from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa

from projections.follower import metadata
from projections.sql import insert_ignoring_existing, storable_text

user_keys = sa.Table(
    "user_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("login", sa.String(255), nullable=False, unique=True),
)

printer_keys = sa.Table(
    "printer_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
)

host_keys = sa.Table(
    "host_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
)

# The applications jobs were printed from (PrintJob.Tracked `application`). A job row holds the
# id as a 2-byte integer, 0 for "not known" (no row here: SQLite stores a 0 in no bytes at all).
application_keys = sa.Table(
    "application_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
)


class KeyTable:
    """Small int ids for natural keys (logins, queue names), shared by every projection.

    Ids are handed out once and never change, so a rebuilt projection gets the same ids. The
    in-memory cache only learns ids whose transaction committed (see `committed`), so an id
    from a rolled-back insert is never reused for another name.
    """

    def __init__(self, table: sa.Table, column: str) -> None:
        self.table = table
        self.column = table.c[column]
        self.length = getattr(self.column.type, "length", None)
        self._cache: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    def ids(self, conn: sa.Connection, names: Iterable[str]) -> dict[str, int]:
        """The id of each name (keyed by the name as given). A name the column cannot hold as it
        is (a NUL, too long) is stored as `storable_text` makes it."""
        wanted = set(names)
        found = {n: self._cache[n] for n in wanted if n in self._cache}
        missing = wanted - found.keys()
        if missing:
            stored = {n: storable_text(n, self.length) for n in missing}
            keys = set(stored.values())
            insert_ignoring_existing(conn, self.table, [{self.column.name: k} for k in sorted(keys)])
            rows = conn.execute(sa.select(self.column, self.table.c.id).where(self.column.in_(keys)))
            by_key = {key: id_ for key, id_ in rows}
            fresh = {n: by_key[k] for n, k in stored.items()}
            self._pending.update(fresh)
            found.update(fresh)
        return found

    def committed(self) -> None:
        self._cache.update(self._pending)
        self._pending.clear()

    def rolled_back(self) -> None:
        self._pending.clear()
