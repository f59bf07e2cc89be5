"""Dialect-aware statements shared by the projections (SQLite and PostgreSQL)."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignoring_existing(conn: sa.Connection, table: sa.Table, rows: Sequence[dict]) -> None:
    if rows:
        conn.execute(dialect_insert(conn, table).on_conflict_do_nothing(), list(rows))


def add_to_totals(conn: sa.Connection, table: sa.Table, keys: Iterable[str], rows: Sequence[dict]) -> None:
    """Upsert rows, adding their non-key columns to the totals already stored."""
    if not rows:
        return
    keys = list(keys)
    stmt = dialect_insert(conn, table)
    sums = {c: table.c[c] + stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=sums), list(rows))


class KeyTable:
    """Small int ids for natural keys (logins, queue names), shared by every projection.

    Ids are handed out once and never change, so a rebuilt projection gets the same ids. The
    in-memory cache only learns ids whose transaction committed (see `committed`), so an id
    from a rolled-back insert is never reused for another name.
    """

    def __init__(self, table: sa.Table, column: str) -> None:
        self.table = table
        self.column = table.c[column]
        self._cache: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    def ids(self, conn: sa.Connection, names: Iterable[str]) -> dict[str, int]:
        wanted = set(names)
        found = {n: self._cache[n] for n in wanted if n in self._cache}
        missing = wanted - found.keys()
        if missing:
            insert_ignoring_existing(conn, self.table, [{self.column.name: n} for n in sorted(missing)])
            rows = conn.execute(sa.select(self.column, self.table.c.id).where(self.column.in_(missing)))
            fresh = {name: id_ for name, id_ in rows}
            self._pending.update(fresh)
            found.update(fresh)
        return found

    def committed(self) -> None:
        self._cache.update(self._pending)
        self._pending.clear()

    def rolled_back(self) -> None:
        self._pending.clear()
