"""The legacy database, through any ODBC driver (pyodbc): connect, describe, stream rows.

Narrow text (char/varchar) is handed over as the driver's raw bytes and decoded by the row
checks (tools.pa6_migrate.rows), so that one cp1252 value in a UTF-8 column sets its row aside
instead of failing the whole fetch. The converter for narrow text is the builtin `bytes`, which
hands the driver's buffer on without a Python call of ours per value: a `bytes` subclass there
cost about 10 µs a row on the SQLite driver, half of the whole fetch. Binary columns, rare in a
legacy job table, are the ones marked (`Binary`), so that a mapping that names one as text is
told so. Connection strings carry passwords: `redacted` is the only
form that is ever logged or printed.
"""
from __future__ import annotations

import logging
import queue
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import pyodbc

log = logging.getLogger("pageledger.pa6_migrate")

_NARROW = (pyodbc.SQL_CHAR, pyodbc.SQL_VARCHAR, pyodbc.SQL_LONGVARCHAR)
_BINARY = (pyodbc.SQL_BINARY, pyodbc.SQL_VARBINARY, pyodbc.SQL_LONGVARBINARY)
_SECRET = re.compile(r"((?:^|;)\s*(?:PWD|PASSWORD)\s*=)(\{[^}]*\}|[^;]*)", re.IGNORECASE)


class SourceError(RuntimeError):
    """The legacy database cannot be reached or read; the message says why, without secrets."""


def redacted(dsn: str) -> str:
    return _SECRET.sub(r"\1***", dsn)


Raw = bytes
"""Narrow text as the driver returned it, not yet decoded (plain bytes: test with `type(v) is Raw`)."""


class Binary(bytes):
    """A value of a binary column: bytes that are not text in any encoding."""

    __slots__ = ()


def connect(dsn: str) -> pyodbc.Connection:
    try:
        conn = pyodbc.connect(dsn, autocommit=True, readonly=True, timeout=30)
    except pyodbc.Error as exc:
        raise SourceError(f"cannot connect to {redacted(dsn)}: {_message(exc)}") from None
    for sql_type in _NARROW:
        conn.add_output_converter(sql_type, Raw)
    for sql_type in _BINARY:
        conn.add_output_converter(sql_type, Binary)
    return conn


def _message(exc: pyodbc.Error) -> str:
    return redacted(" ".join(str(a) for a in exc.args[1:] or exc.args))


def query(conn: pyodbc.Connection, sql: str, params: Sequence[Any] = (), *, batch: int = 5000,
          what: str = "rows") -> Iterator[list[tuple]]:
    """The rows of `sql` in lists of up to `batch` (the driver's cursor, never all at once)."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql, *params)
    except pyodbc.Error as exc:
        raise SourceError(f"reading {what} failed: {_message(exc)}\n  query: {sql}") from None
    try:
        while True:
            try:
                rows = cursor.fetchmany(batch)
            except pyodbc.Error as exc:
                raise SourceError(f"reading {what} failed: {_message(exc)}") from None
            if not rows:
                return
            yield [tuple(r) for r in rows]
    finally:
        cursor.close()


def prefetched(pages: Iterator[list[tuple]], depth: int = 2) -> Iterator[list[tuple]]:
    """The same pages, fetched one or two ahead in a thread: the driver reads the next batch
    (without the interpreter lock) while this thread checks and records the current one.
    At most `depth` pages wait, so memory stays bounded."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def read() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        q.put(page, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            q.put(exc)

    reader = threading.Thread(target=read, name="legacy-fetch", daemon=True)
    reader.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def scalar(conn: pyodbc.Connection, sql: str, params: Sequence[Any] = (), what: str = "a count") -> Any:
    for rows in query(conn, sql, params, batch=1, what=what):
        return rows[0][0]
    return None


# --- inspect --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str
    type_name: str
    nullable: bool


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    rows: int | None  # None: could not be counted


SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "sys", "INFORMATION_SCHEMA"}


def describe(conn: pyodbc.Connection) -> list[Table]:
    """Every user table with its columns and row count, from the driver's ODBC metadata."""
    cursor = conn.cursor()
    found = [(_text(t.table_schem), _text(t.table_name)) for t in cursor.tables(tableType="TABLE")]
    found = [(s, n) for s, n in found if s not in SYSTEM_SCHEMAS and not n.startswith("sqlite_")]
    tables = []
    for schema, name in sorted(found):
        cols = tuple(Column(_text(c.column_name), _text(c.type_name), bool(c.nullable))
                     for c in conn.cursor().columns(table=name, schema=schema or None))
        qualified = ".".join(_quote(p) for p in (schema, name) if p)
        try:
            rows = int(_text(scalar(conn, f"SELECT COUNT(*) FROM {qualified}")))
        except SourceError as exc:
            log.warning("could not count the rows of %s: %s", name, exc)
            rows = None
        tables.append(Table(schema, name, cols, rows))
    return tables


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
