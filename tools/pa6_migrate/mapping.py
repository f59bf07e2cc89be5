"""The mapping file (TOML): which legacy tables and columns hold users, printers, cost
schedules and jobs, since no public source documents Print Audit 6's schema.

A value is named in one of three ways:

    login = "LoginName"                      a column (dotted for a joined table: "u.LoginName")
    department = { sql = "UPPER(d.Name)" }   an SQL expression, sent to the source as written
    printer = { value = "Job Manager" }      a constant, for a value the source does not hold

Each section names its rows with `table = "Name"` or, for joins, `from = "<SQL FROM clause>"`.
Identifiers are quoted in standard SQL ("Name"), which SQL Server, PostgreSQL and SQLite accept.
"""
from __future__ import annotations

import codecs
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

SHIPPED = {"pa6-default": "pa6_default.toml", "job-manager-export": "job_manager_export.toml"}

FIELDS = {
    "users": (("key", "login"), ("full_name", "email", "department")),
    "printers": (("name",), ()),
    "cost_schedules": (("printer", "valid_from", "mono_page", "colour_page"), ("duplex_discount_pct",)),
    "jobs": (("key", "user", "printer", "time", "copies", "cost"),
             ("pages", "total_pages", "user_ref", "document", "client_host", "colour_pages", "colour", "duplex",
              "paper", "billing_code", "unit_cost")),
}
SECTION_KEYS = {"table", "from", "where", "description"}


class MappingError(ValueError):
    """The mapping file is not one this tool can follow; the message names the entry."""


@dataclass(frozen=True)
class Value:
    """One mapped value: an SQL expression to select, or a constant."""

    sql: str | None = None
    constant: Any = None


@dataclass(frozen=True)
class Section:
    name: str
    source: str  # the FROM clause
    where: str | None
    values: dict[str, Value]

    def has(self, name: str) -> bool:
        return name in self.values

    def selected(self) -> list[str]:
        """The names whose values are selected, in select-list order."""
        return [n for n, v in self.values.items() if v.sql is not None]

    def select(self, *, names: list[str] | None = None, extra_where: str | None = None,
               order_by: str | None = None) -> str:
        names = self.selected() if names is None else names
        columns = ", ".join(f"{self.values[n].sql} AS {quote(n)}" for n in names) or "1"
        where = [w for w in (self.where, extra_where) if w]
        sql = f"SELECT {columns} FROM {self.source}"
        if where:
            sql += " WHERE " + " AND ".join(f"({w})" for w in where)
        if order_by:
            sql += f" ORDER BY {order_by}"
        return sql


@dataclass(frozen=True)
class Rules:
    time_formats: tuple[str, ...] = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
                                     "%Y-%m-%d %H:%M")
    max_pages: int = 100_000  # per copy: above it a row is "absurd", not a job
    max_copies: int = 10_000
    cost_tolerance: int = 50  # 1/10,000 units (0.005): legacy costs rounded to the cent still agree
    text_encoding: str = "utf-8"  # of narrow (varchar) text; a row that is not in it is set aside


@dataclass(frozen=True)
class Mapping:
    name: str
    description: str
    users: Section | None
    printers: Section | None
    cost_schedules: Section | None
    jobs: Section
    rules: Rules = field(default_factory=Rules)
    path: str = ""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def column(path: str) -> str:
    """A dotted column name as quoted SQL: u.LoginName → "u"."LoginName"."""
    parts = path.split(".")
    if not all(p.strip() for p in parts):
        raise MappingError(f"{path!r} is not a column name")
    return ".".join(quote(p) for p in parts)


def load_mapping(name_or_path: str) -> Mapping:
    """A shipped mapping by name (`pa6-default`, `job-manager-export`) or a TOML file."""
    if name_or_path in SHIPPED:
        text = resources.files("tools.pa6_migrate.mappings").joinpath(SHIPPED[name_or_path]).read_text("utf-8")
        where = name_or_path
    else:
        path = Path(name_or_path)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise MappingError(f"cannot read the mapping file {path}: {exc.strerror}") from None
        where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where}: not valid TOML: {exc}") from None
    return parse_mapping(data, where)


def parse_mapping(data: dict, where: str = "mapping") -> Mapping:
    unknown = set(data) - {"name", "description", "rules", *FIELDS}
    if unknown:
        raise MappingError(f"{where}: unknown sections {', '.join(sorted(unknown))}")
    if "jobs" not in data:
        raise MappingError(f"{where}: a [jobs] section is required")
    sections = {name: _section(name, data[name], where) for name in FIELDS if name in data}
    jobs = sections["jobs"]
    if jobs.has("pages") == jobs.has("total_pages"):
        raise MappingError(f"{where}: [jobs] needs exactly one of pages (per copy) or total_pages (all copies)")
    if jobs.has("colour_pages") and jobs.has("colour"):
        raise MappingError(f"{where}: [jobs] takes colour_pages or a colour flag, not both")
    if jobs.values["key"].sql is None:
        raise MappingError(f"{where}: [jobs] key must be a column or SQL expression (rows are read in its order)")
    return Mapping(name=str(data.get("name", "")), description=str(data.get("description", "")),
                   users=sections.get("users"), printers=sections.get("printers"),
                   cost_schedules=sections.get("cost_schedules"), jobs=jobs,
                   rules=_rules(data.get("rules", {}), where), path=where)


def _section(name: str, data: Any, where: str) -> Section:
    if not isinstance(data, dict):
        raise MappingError(f"{where}: [{name}] must be a table")
    required, optional = FIELDS[name]
    unknown = set(data) - set(required) - set(optional) - SECTION_KEYS
    if unknown:
        raise MappingError(f"{where}: [{name}] has unknown entries {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(required + optional)})")
    missing = [k for k in required if k not in data]
    if missing:
        raise MappingError(f"{where}: [{name}] lacks {', '.join(missing)}")
    if ("table" in data) == ("from" in data):
        raise MappingError(f"{where}: [{name}] needs exactly one of table or from")
    source = column(str(data["table"])) if "table" in data else str(data["from"])
    values = {}
    for key in required + optional:
        if key in data:
            values[key] = _value(name, key, data[key], where)
    return Section(name, source, data.get("where"), values)


def _value(section: str, key: str, spec: Any, where: str) -> Value:
    if isinstance(spec, str):
        return Value(sql=column(spec))
    if isinstance(spec, dict) and set(spec) == {"sql"} and isinstance(spec["sql"], str) and spec["sql"].strip():
        return Value(sql=spec["sql"])
    if isinstance(spec, dict) and set(spec) == {"value"}:
        return Value(constant=spec["value"])
    raise MappingError(f"{where}: [{section}] {key} must be a column name, {{ sql = \"...\" }} or "
                       f"{{ value = ... }}")


def _rules(data: Any, where: str) -> Rules:
    if not isinstance(data, dict):
        raise MappingError(f"{where}: [rules] must be a table")
    known = {"time_formats", "max_pages", "max_copies", "cost_tolerance", "text_encoding"}
    unknown = set(data) - known
    if unknown:
        raise MappingError(f"{where}: [rules] has unknown entries {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    if "time_formats" in data:
        formats = data["time_formats"]
        if not (isinstance(formats, list) and formats and all(isinstance(f, str) for f in formats)):
            raise MappingError(f"{where}: [rules] time_formats must be a list of strptime formats")
        kwargs["time_formats"] = tuple(formats)
    for key in ("max_pages", "max_copies"):
        if key in data:
            if not isinstance(data[key], int) or data[key] < 1:
                raise MappingError(f"{where}: [rules] {key} must be a positive integer")
            kwargs[key] = data[key]
    if "cost_tolerance" in data:
        try:
            tolerance = Decimal(str(data["cost_tolerance"]))
        except InvalidOperation:
            raise MappingError(f"{where}: [rules] cost_tolerance must be an amount such as \"0.005\"") from None
        if not tolerance.is_finite() or tolerance < 0:
            raise MappingError(f"{where}: [rules] cost_tolerance must be an amount such as \"0.005\"")
        kwargs["cost_tolerance"] = int(tolerance * 10_000)
    if "text_encoding" in data:
        try:
            codecs.lookup(str(data["text_encoding"]))
        except LookupError:
            raise MappingError(f"{where}: [rules] text_encoding {data['text_encoding']!r} is unknown") from None
        kwargs["text_encoding"] = str(data["text_encoding"])
    return Rules(**kwargs)
