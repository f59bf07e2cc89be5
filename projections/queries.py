"""Read-side queries over the read models (never over the event store)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from domain.costs import format_money
from pageledger.codec import from_micros
from projections.tables import (access_tokens, host_keys, jobs, printer_keys, projection_tracking, usage_daily,
                                user_keys)
from projections.usage_daily import MICROS_PER_DAY


@dataclass(frozen=True)
class JobFilter:
    user: str | None = None
    printer: str | None = None
    since: int | None = None  # µs, inclusive
    until: int | None = None  # µs, exclusive
    before_seq: int | None = None  # keyset cursor: rows with a smaller job number
    limit: int = 100


def list_jobs(conn: sa.Connection, f: JobFilter) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first. Returns the page and the cursor for the next page (None at the end)."""
    q = (sa.select(jobs, user_keys.c.login, printer_keys.c.name.label("printer_name"),
                   host_keys.c.name.label("client_host"))
         .join(user_keys, user_keys.c.id == jobs.c.user_id)
         .join(printer_keys, printer_keys.c.id == jobs.c.printer_id)
         .join(host_keys, host_keys.c.id == jobs.c.host_id))
    if f.user is not None:
        q = q.where(user_keys.c.login == f.user)
    if f.printer is not None:
        q = q.where(printer_keys.c.name == f.printer)
    if f.since is not None:
        q = q.where(jobs.c.submitted_at >= f.since)
    if f.until is not None:
        q = q.where(jobs.c.submitted_at < f.until)
    if f.before_seq is not None:
        q = q.where(jobs.c.seq < f.before_seq)
    rows = conn.execute(q.order_by(jobs.c.seq.desc()).limit(f.limit + 1)).mappings().all()
    page = [_job_json(r) for r in rows[: f.limit]]
    cursor = rows[f.limit - 1]["seq"] if len(rows) > f.limit else None
    return page, cursor


def _job_json(r: Any) -> dict[str, Any]:
    return {
        "job": r["seq"], "user": r["login"], "printer": r["printer_name"], "client_host": r["client_host"],
        "document": r["document"], "submitted_at": from_micros(r["submitted_at"]).isoformat(),
        "pages": r["pages"], "copies": r["copies"], "sheets": r["sheets"],
        "colour_pages": r["colour_pages"], "duplex": bool(r["duplex"]), "paper": r["paper"],
        "size": r["size"], "pdl": r["pdl"], "cost": format_money(r["cost"]),
        "status": "denied" if r["status"] else "tracked",
    }


GROUPS = ("user", "printer", "day")


def usage_totals(conn: sa.Connection, group_by: str, *, user: str | None = None,
                 since_day: int | None = None, until_day: int | None = None) -> list[dict[str, Any]]:
    """Totals of jobs, pages, sheets, colour pages and cost, grouped by user, printer or day."""
    key = {"user": user_keys.c.login, "printer": printer_keys.c.name, "day": usage_daily.c.day}[group_by]
    u = usage_daily
    q = (sa.select(key.label("key"), sa.func.sum(u.c.jobs), sa.func.sum(u.c.pages), sa.func.sum(u.c.sheets),
                   sa.func.sum(u.c.colour_pages), sa.func.sum(u.c.cost))
         .join(user_keys, user_keys.c.id == u.c.user_id)
         .join(printer_keys, printer_keys.c.id == u.c.printer_id)
         .group_by(key).order_by(key))
    if user is not None:
        q = q.where(user_keys.c.login == user)
    if since_day is not None:
        q = q.where(u.c.day >= since_day)
    if until_day is not None:
        q = q.where(u.c.day < until_day)
    out = []
    for k, n, pages, sheets, colour, cost in conn.execute(q):
        if group_by == "day":
            k = from_micros(int(k) * MICROS_PER_DAY).date().isoformat()
        out.append({group_by: k, "jobs": int(n), "pages": int(pages), "sheets": int(sheets),
                    "colour_pages": int(colour), "cost": format_money(int(cost))})
    return out


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    name: str
    role: str
    subject: str
    revoked: bool


def find_token(conn: sa.Connection, token_hash: bytes) -> TokenRecord | None:
    row = conn.execute(sa.select(access_tokens).where(access_tokens.c.token_hash == token_hash)).mappings().first()
    if row is None:
        return None
    return TokenRecord(row["token_id"], row["name"], row["role"], row["subject"], bool(row["revoked"]))


def list_tokens(conn: sa.Connection) -> list[TokenRecord]:
    rows = conn.execute(sa.select(access_tokens).order_by(access_tokens.c.issued_at)).mappings()
    return [TokenRecord(r["token_id"], r["name"], r["role"], r["subject"], bool(r["revoked"])) for r in rows]


def projection_positions(conn: sa.Connection) -> dict[str, int]:
    return {name: int(pos) for name, pos in conn.execute(sa.select(projection_tracking))}
