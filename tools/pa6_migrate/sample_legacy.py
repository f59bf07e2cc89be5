"""PA6-style legacy databases for the migration's tests, benchmark and demos, in real SQLite and
PostgreSQL: several years of jobs priced by cost settings that change, plus every kind of bad
row the migration must set aside, each with the reason it must give.

`build(n)` makes the rows in memory (deterministic); `to_sqlite`/`to_postgres` write the
default PA6 layout, `flat_to_sqlite`/`flat_to_postgres` the Job Manager export table.
"""
from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg

from domain.costs import CostSchedule

START = datetime(2019, 1, 1)
END = datetime(2024, 12, 31)
SCHEDULES = (  # (valid from, mono, colour, duplex discount %), site-local
    (datetime(2015, 1, 1), 500, 2500, 10),
    (datetime(2022, 1, 1), 600, 3000, 10),
)
PAPERS = ("A4",) * 8 + ("Letter", "A3")
COST_PLUS_ONE = Decimal("1.0000")


@dataclass
class Legacy:
    users: list[tuple] = field(default_factory=list)  # UserID, LoginName, FullName, Email, DepartmentID
    departments: list[tuple] = field(default_factory=list)
    printers: list[tuple] = field(default_factory=list)  # PrinterID, PrinterName
    cost_settings: list[tuple] = field(default_factory=list)
    billing: list[tuple] = field(default_factory=list)
    jobs: list[tuple] = field(default_factory=list)  # see JOB_COLUMNS
    bad: dict[object, str] = field(default_factory=dict)  # JobID -> the reason's expected words
    unkeyed: int = 0


JOB_COLUMNS = ("JobID", "UserID", "PrinterID", "DocumentName", "ClientMachine", "PrintDate", "Pages", "Copies",
               "ColourPages", "Duplex", "PaperSize", "TotalCost", "BillingCodeID")


def price(printer: int, at: datetime, pages: int, colour: int, copies: int, duplex: bool, paper: str) -> Decimal:
    mono, col, discount = next((m, c, d) for start, m, c, d in reversed(SCHEDULES) if start <= at)
    units = CostSchedule(mono, col, duplex_discount_pct=discount).price(
        pages=pages, colour_pages=colour, copies=copies, duplex=duplex, paper=paper)
    return Decimal(units) / 10_000


def build(n: int, *, seed: int = 7, bad: bool = True, users: int = 300, printers: int = 12,
          text_dates: bool = False) -> Legacy:
    rnd = random.Random(seed)
    lg = Legacy()
    lg.departments = [(i, f"Dept {i}") for i in range(1, 6)]
    lg.users = [(i, f"user{i:04d}", f"User Number {i}", f"user{i}@example.org", 1 + i % 5) for i in range(1, users + 1)]
    lg.printers = [(i, f"hq-printer-{i:02d}") for i in range(1, printers + 1)]
    cid = 0
    for p, _ in lg.printers:
        for start, mono, colour, discount in SCHEDULES:
            cid += 1
            lg.cost_settings.append((cid, p, start, Decimal(mono) / 10_000, Decimal(colour) / 10_000, discount))
    lg.billing = [(i, f"PRJ-{i:03d}") for i in range(1, 11)]
    span = int((END - START).total_seconds())
    fmt = (lambda d: d.strftime("%Y-%m-%d %H:%M:%S")) if text_dates else (lambda d: d)
    for job in range(1, n + 1):
        at = START + timedelta(seconds=rnd.randrange(span))
        pages = rnd.choice((1, 1, 1, 2, 2, 3, 4, 5, 8, 10, 12, 20, 40))
        copies = rnd.choice((1,) * 12 + (2, 3, 5))
        colour = rnd.choice((0, 0, 0, pages, pages // 2))
        duplex = rnd.random() < 0.3
        paper = rnd.choice(PAPERS)
        printer = rnd.randrange(1, printers + 1)
        cost = price(printer, at, pages, colour, copies, duplex, paper)
        lg.jobs.append((job, rnd.randrange(1, users + 1), printer, f"Document {job}.pdf", f"PC-{job % 40:02d}",
                        fmt(at), pages, copies, colour, duplex, paper, cost, rnd.choice((None, 1, 2, 3))))
    # DST: 02:30 on the day Europe/Berlin skips an hour, and on the day it repeats one.
    for at in (datetime(2021, 3, 28, 2, 30), datetime(2021, 10, 31, 2, 30)):
        n += 1
        lg.jobs.append((n, 1, 1, "dst.pdf", "PC-01", fmt(at), 2, 1, 0, False, "A4", price(1, at, 2, 0, 1, False, "A4"),
                        None))
    if bad:
        _bad_rows(lg, n, fmt, text_dates)
    return lg


def _bad_rows(lg: Legacy, n: int, fmt, text_dates: bool) -> None:
    at = datetime(2020, 6, 15, 10, 0)
    good = price(1, at, 3, 0, 1, False, "A4")

    def row(**changes):
        nonlocal n
        n += 1
        values = dict(zip(JOB_COLUMNS, (n, 1, 1, "bad.pdf", "PC-01", fmt(at), 3, 1, 0, False, "A4", good, None)))
        values.update(changes)
        lg.jobs.append(tuple(values[c] for c in JOB_COLUMNS))
        return values["JobID"]

    lg.bad[row(UserID=99999)] = "missing user"
    lg.bad[row(UserID=None)] = "user is NULL"
    lg.bad[row(Pages=-5)] = "negative pages"
    lg.bad[row(Pages=5_000_000)] = "absurd pages"
    lg.bad[row(PrintDate=fmt(datetime(2031, 1, 1, 9, 0)))] = "in the future"
    lg.bad[row(Copies=None)] = "copies is NULL"
    lg.bad[row(TotalCost=None)] = "cost is NULL"
    lg.bad[row(TotalCost=good + COST_PLUS_ONE)] = "disagrees"
    lg.bad[row(ColourPages=7)] = "colour pages"
    lg.bad[row(PrinterID=None)] = "printer is NULL"
    if text_dates:
        lg.bad[row(PrintDate="31/02/2020 25:61")] = "not a date"
        lg.bad[row(DocumentName=b"Caf\xe9 au lait.doc")] = "not utf-8"
    dup = row()
    lg.jobs.append(lg.jobs[-1])  # the same JobID twice
    lg.bad[dup] = "duplicate legacy id"
    lg.jobs.append((None, 1, 1, "nokey.pdf", "PC-01", fmt(at), 3, 1, 0, False, "A4", good, None))
    lg.unkeyed = 1


# --- the default PA6 layout -----------------------------------------------------------------

SQLITE_DDL = """
CREATE TABLE "Departments" ("DepartmentID" INTEGER PRIMARY KEY, "DepartmentName" VARCHAR(100));
CREATE TABLE "Users" ("UserID" INTEGER PRIMARY KEY, "LoginName" VARCHAR(100), "FullName" VARCHAR(200),
                      "Email" VARCHAR(200), "DepartmentID" INTEGER);
CREATE TABLE "Printers" ("PrinterID" INTEGER PRIMARY KEY, "PrinterName" VARCHAR(200));
CREATE TABLE "CostSettings" ("CostSettingID" INTEGER PRIMARY KEY, "PrinterID" INTEGER, "EffectiveFrom" {ts},
                             "MonoPageCost" NUMERIC(19,4), "ColourPageCost" NUMERIC(19,4), "DuplexDiscountPct" INTEGER);
CREATE TABLE "BillingCodes" ("BillingCodeID" INTEGER PRIMARY KEY, "Code" VARCHAR(50));
CREATE TABLE "PrintJobs" ("JobID" INTEGER, "UserID" INTEGER, "PrinterID" INTEGER, "DocumentName" VARCHAR(255),
                          "ClientMachine" VARCHAR(100), "PrintDate" {ts}, "Pages" INTEGER, "Copies" INTEGER,
                          "ColourPages" INTEGER, "Duplex" {bool}, "PaperSize" VARCHAR(20), "TotalCost" NUMERIC(19,4),
                          "BillingCodeID" INTEGER);
"""


def _sqlite_value(v):
    if isinstance(v, Decimal):
        return str(v)  # NUMERIC text: the driver reads it back exactly
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, bool):
        return int(v)
    return v


def to_sqlite(lg: Legacy, path) -> str:
    """Write the PA6 layout; dates as text (as they are in SQLite). Returns an ODBC DSN."""
    db = sqlite3.connect(path)
    db.executescript(SQLITE_DDL.format(ts="TEXT", bool="INTEGER"))
    for table, rows in (("Departments", lg.departments), ("Users", lg.users), ("Printers", lg.printers),
                        ("CostSettings", lg.cost_settings), ("BillingCodes", lg.billing), ("PrintJobs", lg.jobs)):
        if rows:
            marks = ",".join("?" * len(rows[0]))
            db.executemany(f'INSERT INTO "{table}" VALUES ({marks})',
                           ([_sqlite_value(v) for v in r] for r in rows))
    # A cp1252 byte string stored as TEXT, as a legacy import tool would have left it.
    db.execute('UPDATE "PrintJobs" SET "DocumentName" = CAST("DocumentName" AS TEXT) WHERE typeof("DocumentName") = \'blob\'')
    db.commit()
    db.close()
    return sqlite_dsn(path)


def sqlite_dsn(path) -> str:
    return f"DRIVER={{SQLite3}};Database={path};StepAPI=1;"


def pg_dsn(dbname: str, *, code_page_text: bool = False) -> str:
    """The PostgreSQL Unicode driver's DSN; with `code_page_text`, the ANSI driver's with
    client_encoding SQL_ASCII, the one way found to read a SQL_ASCII database whose varchars hold
    cp1252 bytes (the Unicode driver's UTF-8 client encoding makes the server refuse the whole
    query: "invalid byte sequence for encoding UTF8"). Through the ANSI driver pyodbc cannot read
    a NUMERIC column at all (07006 "unsupported type", also in a UTF-8 database): such a
    database's amounts must be text, or cast to text in the mapping."""
    if code_page_text:
        return (f"DRIVER={{PostgreSQL ANSI}};SERVER=127.0.0.1;PORT=5432;DATABASE={dbname};UID=postgres;"
                f"BoolsAsChar=0;UseDeclareFetch=1;Fetch=10000;ConnSettings=SET client_encoding TO 'SQL_ASCII';")
    return (f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT=5432;DATABASE={dbname};UID=postgres;"
            f"BoolsAsChar=0;UseDeclareFetch=1;Fetch=10000;")


def _copy_value(v) -> bytes:
    if v is None:
        return b"\\N"
    if isinstance(v, bool):
        return b"t" if v else b"f"
    raw = v if isinstance(v, bytes) else str(v).encode("utf-8")  # bytes: a code page's, as they are
    return raw.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


def _copy_rows(conn: psycopg.Connection, table: str, rows: list[tuple]) -> None:
    """COPY in text format written byte for byte, so that a cp1252 value arrives as its bytes
    (psycopg's write_row would send a bytes value as bytea text)."""
    with conn.cursor().copy(f'COPY "{table}" FROM STDIN') as copy:
        for i in range(0, len(rows), 10_000):
            copy.write(b"".join(b"\t".join(_copy_value(v) for v in r) + b"\n" for r in rows[i:i + 10_000]))


def to_postgres(lg: Legacy, conninfo: str, *, text_columns: bool = False) -> None:
    """Write the PA6 layout with real types (timestamp, boolean, numeric) through COPY; with
    `text_columns`, dates and amounts are varchars (a date can then be unparsable), for a
    SQL_ASCII database that holds cp1252 bytes, read through the ANSI driver (see pg_dsn)."""
    ddl = SQLITE_DDL.format(ts="VARCHAR(40)" if text_columns else "TIMESTAMP", bool="BOOLEAN")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(ddl.replace("NUMERIC(19,4)", "VARCHAR(40)") if text_columns else ddl)
        for table, rows in (("Departments", lg.departments), ("Users", lg.users), ("Printers", lg.printers),
                            ("CostSettings", lg.cost_settings), ("BillingCodes", lg.billing), ("PrintJobs", lg.jobs)):
            _copy_rows(conn, table, rows)


# --- the flat Job Manager export --------------------------------------------------------------

FLAT_COLUMNS = ("Row", "User", "Date Printed", "Copies", "Units", "Cost per unit", "Total Cost", "Job Type",
                "Client Code")
FLAT_DATE = "%m/%d/%Y %I:%M:%S %p"


@dataclass
class Flat:
    rows: list[tuple] = field(default_factory=list)
    bad: dict[object, str] = field(default_factory=dict)


def build_flat(n: int, *, seed: int = 11, bad: bool = True, cp1252: bool = True) -> Flat:
    rnd = random.Random(seed)
    flat = Flat()
    span = int((END - START).total_seconds())
    for i in range(1, n + 1):
        at = START + timedelta(seconds=rnd.randrange(span))
        copies = rnd.choice((1, 1, 1, 2, 3))
        units = rnd.choice((1, 2, 3, 5, 10, 20)) * copies
        colour = rnd.random() < 0.2
        rate = Decimal("0.2500") if colour else Decimal("0.0500")
        flat.rows.append((i, f"user{rnd.randrange(1, 80):03d}", at.strftime(FLAT_DATE), copies, units, rate,
                          rate * units, "Colour Print" if colour else "B&W Print", rnd.choice(("", "CC-1", "CC-2"))))
    if bad:
        at = datetime(2021, 5, 4, 14, 30).strftime(FLAT_DATE)

        def row(**changes):
            nonlocal n
            n += 1
            values = dict(zip(FLAT_COLUMNS, (n, "user001", at, 1, 4, Decimal("0.0500"), Decimal("0.2000"),
                                             "B&W Print", "")))
            values.update(changes)
            flat.rows.append(tuple(values[c] for c in FLAT_COLUMNS))
            return n

        flat.bad[row(User=None)] = "user is NULL"
        flat.bad[row(Units=-4)] = "negative pages"
        flat.bad[row(Units=9_000_000, **{"Total Cost": Decimal("450000.0000")})] = "absurd pages"
        flat.bad[row(**{"Date Printed": "yesterday-ish"})] = "not a date"
        flat.bad[row(**{"Date Printed": "01/01/2031 09:00:00 AM"})] = "in the future"
        flat.bad[row(**{"Total Cost": Decimal("0.9000")})] = "disagrees"
        flat.bad[row(Copies=3, Units=4, **{"Total Cost": Decimal("0.2000")})] = "whole number of pages"
        flat.bad[row(Copies=None)] = "copies is NULL"
        if cp1252:
            flat.bad[row(User=b"J\xfcrgen")] = "not utf-8"
        d = row()
        flat.rows.append(flat.rows[-1])
        flat.bad[d] = "duplicate legacy id"
    return flat


FLAT_DDL = ('CREATE TABLE "JobManagerExport" ("Row" INTEGER, "User" VARCHAR(100), "Date Printed" VARCHAR(40), '
            '"Copies" INTEGER, "Units" INTEGER, "Cost per unit" NUMERIC(19,4), "Total Cost" NUMERIC(19,4), '
            '"Job Type" VARCHAR(40), "Client Code" VARCHAR(40))')


def flat_to_sqlite(flat: Flat, path) -> str:
    db = sqlite3.connect(path)
    db.execute(FLAT_DDL)
    db.executemany('INSERT INTO "JobManagerExport" VALUES (?,?,?,?,?,?,?,?,?)',
                   ([_sqlite_value(v) for v in r] for r in flat.rows))
    db.execute('UPDATE "JobManagerExport" SET "User" = CAST("User" AS TEXT) WHERE typeof("User") = \'blob\'')
    db.commit()
    db.close()
    return sqlite_dsn(path)


def flat_to_postgres(flat: Flat, conninfo: str, *, text_columns: bool = False) -> None:
    """The export table (cp1252 bytes need a SQL_ASCII database and `text_columns`, see pg_dsn)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(FLAT_DDL.replace("NUMERIC(19,4)", "VARCHAR(40)") if text_columns else FLAT_DDL)
        _copy_rows(conn, "JobManagerExport", flat.rows)
