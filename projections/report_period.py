"""The parameters every report takes, checked and resolved once for the API, the CLI and the
scheduled reports alike: a period of exact instants, the site's time zone, and the filters.

Dates alone (`2026-12-01`) are days in the site's time zone (the `timezone` site setting, or the
`timezone` parameter): `from` a date is the start of that day, `to` a date is the end of that
day (the start of the next), so `from=2026-12-01&to=2026-12-31` is the whole of December. A
time with an offset is that instant, to the microsecond. Every problem is raised as
`ReportInputError` naming its field, before any query runs.
"""
from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from domain.units import MICROS_PER_DAY, to_micros
from projections.jobs import LEGACY_PDL

PDLS = ("pdf", "postscript", "pcl5", "pclxl", "pwg-raster", "urf", "text", "unknown", LEGACY_PDL)
GROUPINGS = ("user", "department", "printer", "queue", "day", "week", "month")
TIME_GROUPINGS = ("day", "week", "month")
COLOURS = ("colour", "mono")
# The longest period a report covers: ten years (3,653 days), so that a typing slip
# (from=0001-01-01) is refused with a reason instead of reading the whole history.
MAX_PERIOD_DAYS = 3653
MAX_LIMIT = 1000
MAX_NAME = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\u200b-\u200f\u202a-\u202e]")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
EARLIEST_US = 0
LATEST_US = 253_402_214_400_000_000  # 9999-12-31T00:00:00Z


class ReportInputError(ValueError):
    """Bad report parameters: `errors` maps each bad field to what is wrong with it."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ReportParameters:
    """What a report was asked for, resolved: the period in µs (since inclusive, until exclusive)."""

    since: int
    until: int
    timezone: str
    user: str | None = None
    department: str | None = None
    printer: str | None = None
    queue: str | None = None
    colour: str | None = None  # "colour": jobs with a colour impression; "mono": jobs without
    document_type: str | None = None  # the PDL the agent counted the pages in
    group_by: str = "user"
    limit: int = 20
    given: dict[str, str] = field(default_factory=dict, compare=False)  # as sent, for the report's header
    own_only: bool = False  # bound to the caller's own jobs: a user who never printed sees none

    def bound_to(self, login: str) -> "ReportParameters":
        """The same report restricted to one user's own jobs (a caller with role user)."""
        return replace(self, user=login, department=None, own_only=True)


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    """The IANA names there are (listing them reads the zone directory: 30 ms, so once)."""
    return frozenset(available_timezones()) | {"UTC"}


def _zone(name: str) -> ZoneInfo:
    if not name or len(name) > 64 or _CONTROL.search(name) or name not in _zone_names():
        raise ValueError(f"unknown time zone {name[:64]!r}: use an IANA name such as Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name[:64]!r}: use an IANA name such as Europe/Paris") from None


def local_midnight(day: date, zone: ZoneInfo) -> int:
    """µs of the first instant of `day` in `zone` (a day that starts in a DST gap starts when
    the clocks allow: the earliest valid local time)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    # zoneinfo maps a non-existent local time forward by the gap on round trip; fold=0 is the first.
    return to_micros(start)


def parse_instant(text: str, zone: ZoneInfo, *, end_of_day: bool) -> int:
    """µs of an ISO 8601 time with offset, or of a date alone in `zone` (its start, or with
    `end_of_day` the start of the next day)."""
    if not isinstance(text, str) or len(text) > 64 or _CONTROL.search(text):
        raise ValueError("not a date (YYYY-MM-DD) or an ISO 8601 time with offset")
    if _DATE_ONLY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError("not a valid date (YYYY-MM-DD)") from None
        if end_of_day:
            if day == date.max:
                raise ValueError("too late: at most 9999-12-30")
            day += timedelta(days=1)
        return local_midnight(day, zone)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not a date (YYYY-MM-DD) or an ISO 8601 time with offset") from None
    if dt.tzinfo is None:
        raise ValueError("a time needs an offset (Z or +01:00); a date alone is a day in the site's time zone")
    return to_micros(dt)


def _name(raw: Mapping[str, str], key: str, errors: dict[str, list[str]]) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or _CONTROL.search(value):
        errors[key] = [f"1 to {MAX_NAME} characters, no control characters"]
        return None
    return value


def parse_parameters(raw: Mapping[str, str], *, site_timezone: str, now: int,
                     allowed: tuple[str, ...] | None = None) -> ReportParameters:
    """Check and resolve the query parameters of a report. `allowed` names the parameters this
    report takes (the others are refused, named); `now` is the server's time in µs."""
    errors: dict[str, list[str]] = {}
    known = ("from", "to", "timezone", "user", "department", "printer", "queue", "colour", "document_type",
             "group_by", "limit", "format")
    for key in raw:
        if key not in known:
            errors[str(key)[:64]] = ["unknown parameter"]
        elif allowed is not None and key not in allowed and key != "format":
            errors[key] = ["this report does not take this parameter"]
    tz_name = raw.get("timezone", site_timezone)
    try:
        zone = _zone(tz_name)
    except ValueError as exc:
        errors["timezone"] = [str(exc)]
        zone = ZoneInfo("UTC")
        tz_name = "UTC"
    bounds: dict[str, int] = {}
    for key, end_of_day in (("from", False), ("to", True)):
        if key in raw:
            try:
                bounds[key] = parse_instant(raw[key], zone, end_of_day=end_of_day)
            except (ValueError, OverflowError) as exc:
                errors[key] = [str(exc)]
                continue
            if bounds[key] < EARLIEST_US:
                errors[key] = ["before 1970-01-01"]
            elif bounds[key] > LATEST_US:
                errors[key] = ["after 9999-12-30"]
    if "to" not in raw:
        bounds.setdefault("to", now)
    if "from" not in raw and "from" not in errors:
        # Default: this month so far, in the site's time zone.
        local = datetime.fromtimestamp(bounds.get("to", now) // 1_000_000, tz=zone)
        bounds["from"] = local_midnight(local.date().replace(day=1), zone)
        if bounds["from"] >= bounds.get("to", now):  # `to` is the first instant of a month
            previous = (local.date().replace(day=1) - timedelta(days=1)).replace(day=1)
            bounds["from"] = local_midnight(previous, zone)
    if "from" in bounds and "to" in bounds and "from" not in errors and "to" not in errors:
        if bounds["to"] <= bounds["from"]:
            errors["to"] = ["the period ends before it starts (to must be after from)"]
        elif bounds["to"] - bounds["from"] > MAX_PERIOD_DAYS * MICROS_PER_DAY:
            errors["to"] = [f"the period is longer than {MAX_PERIOD_DAYS} days"]
    colour = raw.get("colour")
    if colour is not None and colour not in COLOURS:
        errors["colour"] = [f"one of: {', '.join(COLOURS)}"]
    document_type = raw.get("document_type")
    if document_type is not None and document_type not in PDLS:
        errors["document_type"] = [f"one of: {', '.join(PDLS)}"]
    group_by = raw.get("group_by", "user")
    if group_by not in GROUPINGS:
        errors["group_by"] = [f"one of: {', '.join(GROUPINGS)}"]
    limit = 20
    if "limit" in raw:
        text = raw["limit"]
        if not isinstance(text, str) or not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            errors["limit"] = [f"a whole number from 1 to {MAX_LIMIT}"]
        else:
            limit = int(text)
    names = {key: _name(raw, key, errors) for key in ("user", "department", "printer", "queue")}
    if errors:
        raise ReportInputError(errors)
    return ReportParameters(since=bounds["from"], until=bounds["to"], timezone=tz_name, colour=colour,
                            document_type=document_type, group_by=group_by, limit=limit,
                            given={k: str(v) for k, v in raw.items() if k in known}, **names)
