"""A first mapping for a database nobody has described: guessed from table and column names.

Each field is matched against the column names of each table by a few patterns; the table
with the most job-like columns is taken as the job history. Everything guessed is written
with a CHECK comment: the operator confirms it against `inspect`'s listing before a dry run.
"""
from __future__ import annotations

import re

from tools.pa6_migrate.source import Table

_JOB_FIELDS = {
    "key": r"^(job_?id|id|row|jobnumber|job_?no)$",
    "user": r"^(user(_?name)?|login(_?name)?|owner|account)$",
    "printer": r"^(printer(_?name)?|queue|device)$",
    "time": r"(date|time)",
    "pages": r"^(pages|page_?count|units|total_?pages)$",
    "copies": r"^copies$",
    "cost": r"(total_?cost|cost|charge|amount)$",
    "document": r"(document|title|job_?name)",
    "client_host": r"^(client(_?(machine|host|name|computer))?|machine(_?name)?|workstation|host(_?name)?|computer)$",
    "colour_pages": r"(colou?r)",
    "duplex": r"(duplex|sides)",
    "paper": r"(paper|media|size)",
    "billing_code": r"(billing|client_?code|project)",
}
_USER_FIELDS = {"key": r"^(user_?id|id)$", "login": r"^(login(_?name)?|user_?name|account)$",
                "full_name": r"(full_?name|display_?name|^name$)", "email": r"(e_?mail)"}
_PRINTER_FIELDS = {"name": r"^(printer_?name|name|queue)$"}


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _match(table: Table, fields: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for field, pattern in fields.items():
        for c in table.columns:
            if c.name not in found.values() and re.search(pattern, _norm(c.name)):
                found[field] = c.name
                break
    return found


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def suggest_mapping(tables: list[Table]) -> str:
    if not tables:
        return "# no tables found: is the connection string's database the right one?\n"
    jobs = max(tables, key=lambda t: (len(_match(t, _JOB_FIELDS)), t.rows or 0))
    others = [t for t in tables if t is not jobs]
    users = max(others, key=lambda t: len(_match(t, _USER_FIELDS)), default=None)
    printers = max([t for t in others if t is not users], key=lambda t: len(_match(t, _PRINTER_FIELDS)),
                   default=None)
    out = ['name = "suggested"', f'description = "guessed from the column names of {jobs.name}: CHECK it all"', ""]
    users_match = _match(users, _USER_FIELDS) if users else {}
    if users is not None and "login" in users_match and "key" in users_match:
        out += ["[users]", f"table = {_toml(users.name)}"]
        out += [f"{k} = {_toml(v)}   # CHECK" for k, v in users_match.items()]
        out.append("")
    printers_match = _match(printers, _PRINTER_FIELDS) if printers else {}
    if printers is not None and printers_match:
        out += ["[printers]", f"table = {_toml(printers.name)}", f"name = {_toml(printers_match['name'])}   # CHECK",
                ""]
    found = _match(jobs, _JOB_FIELDS)
    out += ["[jobs]", f"table = {_toml(jobs.name)}   # {jobs.rows if jobs.rows is not None else '?'} rows"]
    for field in _JOB_FIELDS:
        if field in found:
            out.append(f"{field} = {_toml(found[field])}   # CHECK")
        elif field in ("key", "user", "printer", "time", "pages", "copies", "cost"):
            out.append(f"# {field} = ?   required: name its column, or {{ sql = \"...\" }} / {{ value = ... }}")
    out += ["", "[rules]", 'time_formats = ["%Y-%m-%d %H:%M:%S"]   # for times stored as text', ""]
    return "\n".join(out)
