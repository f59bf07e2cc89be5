"""From legacy rows to what PageLedger records: every value checked, every bad row named.

A job row either becomes a `MigratedJob` whole or is set aside with one reason: nothing of a
bad row is ever recorded. Each row also yields its figures (month, impressions, sheets, cost)
read as leniently as possible, so reconciliation can count a rejected row with the same
figures whether it is read by the replay or by the reconciliation pass.
"""
from __future__ import annotations

import bisect
import logging
import operator
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from commands.job_reports import FORBIDDEN, FORBIDDEN_IN_TEXT
from commands.jobs import MigratedJob
from domain.costs import MAX_IMPRESSIONS, CostSchedule, sheets_for
from tools.pa6_migrate.mapping import Mapping, Section
from tools.pa6_migrate.source import Raw

log = logging.getLogger("pageledger.pa6_migrate")

_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)
_FOUR = Decimal("0.0001")
_NAME_BAD = re.compile(f"[{FORBIDDEN}]")
_TEXT_BAD = re.compile(f"[{FORBIDDEN_IN_TEXT}]")
TRUE = {"1", "true", "t", "yes", "y", "on", "-1"}
FALSE = {"0", "false", "f", "no", "n", "off", ""}


class Bad(ValueError):
    """Why one row is set aside (its message is the reason written to the rejects file)."""


# --- the site's time zone -------------------------------------------------------------------

@dataclass
class SiteZone:
    """Legacy times are wall-clock times of the site, without a zone. A time that occurs twice
    (the hour clocks go back) is read as its `ambiguous` occurrence; a time that never occurred
    (the hour clocks skip) is read `forward` (with the offset before the change, as a clock
    not yet changed would show it: 02:30 becomes 03:30 summer time) or set aside (`reject`)."""

    name: str
    ambiguous: str = "earlier"  # or "later"
    nonexistent: str = "forward"  # or "reject"
    zone: ZoneInfo = field(init=False)
    overlaps: int = 0
    gaps: int = 0
    # The offset of each local day that holds no change of offset (None: one that does), by its
    # ordinal: a history of years has a few thousand days, so nearly every row costs one dict
    # lookup instead of two offset computations (a cache by hour missed on most rows).
    _days: dict[int, timedelta | None] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self.zone = ZoneInfo(self.name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{self.name!r} is not a time zone name (such as Europe/Berlin or America/New_York)") \
                from None
        if self.ambiguous not in ("earlier", "later") or self.nonexistent not in ("forward", "reject"):
            raise ValueError("ambiguous is earlier or later; nonexistent is forward or reject")

    def to_micros(self, local: datetime) -> int:
        """µs since the epoch, UTC, of a site-local wall-clock time (raises Bad in a gap if so chosen)."""
        day = local.toordinal()
        offset = self._days.get(day, False)
        if offset is False:
            offset = self._day_offset(local)
            if len(self._days) > 100_000:  # bounded: about 270 years of days
                self._days.clear()
            self._days[day] = offset
        if offset is not None:
            return (local - _EPOCH - offset) // _MICRO
        return self._exact(local)

    def _day_offset(self, local: datetime) -> timedelta | None:
        z = self.zone
        start = datetime(local.year, local.month, local.day)
        end = start + timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999)
        offsets = {t.replace(tzinfo=z, fold=f).utcoffset() for t in (start, end) for f in (0, 1)}
        return offsets.pop() if len(offsets) == 1 else None

    def _exact(self, local: datetime) -> int:
        z = self.zone
        first = local.replace(tzinfo=z, fold=0).utcoffset()
        second = local.replace(tzinfo=z, fold=1).utcoffset()
        offset = first
        if first != second:
            if first > second:  # an overlap: the hour the clocks went back
                self.overlaps += 1
                offset = first if self.ambiguous == "earlier" else second
            else:  # a gap: the hour the clocks skipped
                self.gaps += 1
                if self.nonexistent == "reject":
                    raise Bad(f"time {local.isoformat(' ')} does not exist in {self.name} (the clocks skipped it)")
        return (local - _EPOCH - offset) // _MICRO

    def month_starts(self, months: list[str]) -> list[int]:
        """µs (UTC) of the first local midnight of each "YYYY-MM", and of the month after the last."""
        out = []
        for m in months:
            year, month = int(m[:4]), int(m[5:7])
            out.append(self._midnight(year, month))
        if months:
            year, month = int(months[-1][:4]), int(months[-1][5:7])
            out.append(self._midnight(year + month // 12, month % 12 + 1))
        return out

    def _midnight(self, year: int, month: int) -> int:
        local = datetime(year, month, 1)
        return (local - _EPOCH - local.replace(tzinfo=self.zone, fold=0).utcoffset()) // _MICRO

    def month_of(self, micros: int) -> str:
        local = datetime.fromtimestamp(micros / 1e6, self.zone) if micros >= 0 else _EPOCH
        return f"{local.year:04d}-{local.month:02d}"


# --- values ---------------------------------------------------------------------------------

def text(value: Any, what: str, encoding: str) -> str | None:
    if value is None:
        return None
    if type(value) is Raw:
        try:
            return value.decode(encoding)
        except UnicodeDecodeError:
            shown = value.decode("cp1252", "replace")
            raise Bad(f"{what} is not {encoding} text (cp1252 or another code page?): {shown!r}") from None
    if isinstance(value, (bytes, bytearray)):
        raise Bad(f"{what} is binary, not text")
    return str(value)


def integer(value: Any) -> int | None:
    """An int, or None for NULL; raises ValueError for anything that is not a whole number."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if type(value) is Raw:
        value = value.decode("ascii", "replace")
    d = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    if not d.is_finite() or d != d.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number")
    return int(d)


def money(value: Any) -> int | None:
    """1/10,000 units, rounded half-even at the fourth decimal; None for NULL."""
    if value is None:
        return None
    if type(value) is Raw:
        value = value.decode("ascii", "replace")
    if isinstance(value, float):
        value = repr(value)
    try:
        d = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if not d.is_finite():
        raise ValueError(f"{value!r} is not an amount")
    return int((d * 10_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, (bool, int)):
        return bool(value)
    s = (value.decode("ascii", "replace") if type(value) is Raw else str(value)).strip().lower()
    if s in TRUE:
        return True
    if s in FALSE:
        return False
    raise ValueError(f"{value!r} is not yes or no")


def moment(value: Any, formats: tuple[str, ...], encoding: str) -> datetime:
    """A naive site-local datetime (raises Bad when it cannot be read)."""
    if value is None:
        raise Bad("time is NULL")
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    s = text(value, "time", encoding).strip()  # type: ignore[union-attr]
    if s[:1].isdigit() and s[4:5] == "-" and any(f.startswith("%Y-%m-%d") for f in formats):
        try:  # ISO 8601 is read in C, ten times faster than strptime
            return datetime.fromisoformat(s).replace(tzinfo=None)
        except ValueError:
            pass
    for f in formats:
        try:
            return datetime.strptime(s, f)
        except ValueError:
            continue
    raise Bad(f"time {s[:40]!r} is not a date and time in any of the mapping's time_formats")


def clean_name(value: str | None, what: str, max_length: int = 255) -> str:
    if value is None:
        raise Bad(f"{what} is NULL")
    value = value.strip()
    if not value:
        raise Bad(f"{what} is blank")
    if len(value) > max_length:
        raise Bad(f"{what} is longer than {max_length} characters")
    if _NAME_BAD.search(value):
        raise Bad(f"{what} holds a control, format or separator character")
    return value


# --- rows -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figures:
    """A job row's countable figures as far as they could be read (0 where they could not)."""

    month: str  # "YYYY-MM", site-local; "" when the time could not be read
    impressions: int
    sheets: int
    cost: int


class RowReader:
    """Values of one mapped section's rows by name: selected columns by position, constants."""

    def __init__(self, section: Section, names: list[str] | None = None) -> None:
        self.positions = {n: i for i, n in enumerate(section.selected() if names is None else names)}
        self.constants = {n: v.constant for n, v in section.values.items() if v.sql is None}

    def get(self, row: tuple, name: str) -> Any:
        i = self.positions.get(name)
        if i is not None:
            return row[i]
        return self.constants.get(name)

    def has(self, name: str) -> bool:
        return name in self.positions or name in self.constants


@dataclass
class Schedules:
    """Each printer's legacy cost schedules, oldest first, with their PageLedger versions."""

    by_printer: dict[str, tuple[list[int], list[CostSchedule], list[int]]] = field(default_factory=dict)

    def add(self, printer: str, starts: list[int], schedules: list[CostSchedule], versions: list[int]) -> None:
        self.by_printer[printer.lower()] = (starts, schedules, versions)

    def in_force(self, printer: str, at: int) -> tuple[CostSchedule, int] | None:
        entry = self.by_printer.get(printer.lower())
        if entry is None:
            return None
        starts, schedules, versions = entry
        i = bisect.bisect_right(starts, at) - 1
        if i < 0:
            return None
        return schedules[i], versions[i]


_FAST_FIELDS = ("key", "user", "printer", "document", "client_host", "time", "pages", "total_pages", "copies",
                "colour_pages", "colour", "duplex", "paper", "cost", "unit_cost", "billing_code")
FIGURE_NAMES = ("key", "time", "copies", "duplex", "pages", "total_pages", "cost")


class JobRows:
    """Checks legacy job rows and turns good ones into MigratedJobs."""

    def __init__(self, mapping: Mapping, zone: SiteZone, now: int, schedules: Schedules,
                 duplicates: set[Any] | None = None, names: list[str] | None = None) -> None:
        self.mapping = mapping
        self.rules = mapping.rules
        self.zone = zone
        self.now = now
        self.schedules = schedules
        self.duplicates = duplicates or set()
        self.read = RowReader(mapping.jobs, names)
        self.total = mapping.jobs.has("total_pages")
        self.flagged_colour = mapping.jobs.has("colour")
        # The fast path's view of a row: every field by one C call over the row and the
        # constants (absent fields read as None).
        width = len(self.read.positions)
        consts = tuple(self.read.constants.get(n) for n in _FAST_FIELDS)
        self._extended = consts
        self._pick = operator.itemgetter(*(self.read.positions.get(n, width + i) for i, n in enumerate(_FAST_FIELDS)))
        self._has_user_ref = self.read.has("user_ref")
        self._has_colour_pages = self.read.has("colour_pages")
        self._iso_times = any(f.startswith("%Y-%m-%d") for f in self.rules.time_formats)
        # Amounts as read -> 1/10,000 units: a legacy history repeats a few hundred prices, and
        # reading one (a Decimal, a quantize) cost more than any other check of a row. Keyed by
        # type too, so a value that equals another of another type (True == 1) is read afresh.
        self._amounts: dict[tuple[type, Any], int] = {}

    def key(self, row: tuple) -> Any:
        return self.read.get(row, "key")

    def legacy_id(self, row: tuple) -> str:
        key = self.read.get(row, "key")
        if type(key) is Raw:
            return key.decode(self.rules.text_encoding, "replace")
        return "" if key is None else str(key)

    def figures(self, row: tuple) -> Figures:
        """Lenient figures, the same for a row whether it is accepted or set aside."""
        g = self.read.get
        month = ""
        try:
            local = moment(g(row, "time"), self.rules.time_formats, self.rules.text_encoding)
            month = f"{local.year:04d}-{local.month:02d}"
        except (Bad, ValueError):
            pass
        copies = _lenient(integer, g(row, "copies"))
        duplex = bool(_lenient(flag, g(row, "duplex")))
        if self.total:
            impressions = _lenient(integer, g(row, "total_pages"))
            per_copy = impressions // copies if copies > 0 else 0
        else:
            per_copy = _lenient(integer, g(row, "pages"))
            impressions = per_copy * copies
        sheets = sheets_for(pages=per_copy, copies=copies, duplex=duplex) if per_copy >= 0 and copies > 0 else 0
        return Figures(month, impressions, sheets, _lenient(money, g(row, "cost")))

    def job(self, row: tuple) -> MigratedJob:
        """The row as a MigratedJob, or Bad with the first reason it cannot be one.

        Most rows are plain (an int id, clean text, ints, a datetime or ISO time): the fast
        path checks those in a few µs. Anything it is not sure of goes to the full checks,
        which decide, and name the reason (a test holds the two to the same answers)."""
        try:
            found = self._fast(row)
        except (Bad, ValueError, TypeError, UnicodeDecodeError, ArithmeticError):
            found = None
        return found if found is not None else self.checked(row)

    def _fast(self, row: tuple) -> MigratedJob | None:
        (key, user, printer, document, client_host, when, pages, total, copies, colour_pages, colour, duplex, paper,
         cost, unit_cost, billing_code) = self._pick(row + self._extended)
        if type(key) is not int or key in self.duplicates or type(copies) is not int:
            return None
        enc = self.rules.text_encoding
        if type(user) is Raw:
            user = user.decode(enc)
        if type(printer) is Raw:
            printer = printer.decode(enc)
        if type(document) is Raw:
            document = document.decode(enc)
        if type(client_host) is Raw:
            client_host = client_host.decode(enc)
        if type(paper) is Raw:
            paper = paper.decode(enc)
        if type(billing_code) is Raw:
            billing_code = billing_code.decode(enc)
        if type(user) is not str or type(printer) is not str:
            return None
        document = document or ""
        client_host = client_host or ""
        paper = paper or "unknown"
        billing_code = billing_code or ""
        names = f"{user}{printer}{client_host}{paper}{billing_code}"
        if (type(document) is not str or type(client_host) is not str or type(paper) is not str
                or type(billing_code) is not str or _NAME_BAD.search(names) or _TEXT_BAD.search(document)
                or len(document) > 1024 or not 0 < len(user) <= 255 or not 0 < len(printer) <= 255
                or len(client_host) > 255 or not 0 < len(paper) <= 32 or len(billing_code) > 255
                or user.strip() != user or printer.strip() != printer or client_host.strip() != client_host
                or paper.strip() != paper or billing_code.strip() != billing_code):
            return None
        if type(when) is datetime:
            local = when.replace(tzinfo=None) if when.tzinfo else when
        elif type(when) is Raw or type(when) is str:
            if type(when) is Raw:
                when = when.decode(enc)
            if not (self._iso_times and when[4:5] == "-"):
                return None
            local = datetime.fromisoformat(when)
            if local.tzinfo:
                return None
        else:
            return None
        if local.year < 1970:
            return None
        at = self.zone.to_micros(local)
        if at > self.now:
            return None
        rules = self.rules
        if not 1 <= copies <= rules.max_copies:
            return None
        if self.total:
            if type(total) is not int or total < 0 or total % copies:
                return None
            pages = total // copies
        elif type(pages) is not int or pages < 0:
            return None
        if pages > rules.max_pages or pages * copies > MAX_IMPRESSIONS:
            return None
        if self.flagged_colour:
            if type(colour) is not int and type(colour) is not bool:
                return None
            colour_pages = pages if colour else 0
        elif self._has_colour_pages:
            if type(colour_pages) is not int or not 0 <= colour_pages <= pages:
                return None
        else:
            colour_pages = 0
        if duplex is None:
            if self.read.has("duplex"):
                return None
            duplex = False
        elif type(duplex) is not bool:
            if type(duplex) is not int or duplex not in (0, 1):
                return None
            duplex = bool(duplex)
        if cost is None:
            return None
        cost = self._amount(cost)
        if cost < 0:  # type: ignore[operator]
            return None
        schedule = 0
        if unit_cost is not None or self.read.has("unit_cost"):
            if unit_cost is None:
                return None
            if abs(self._amount(unit_cost) * pages * copies - cost) > rules.cost_tolerance:  # type: ignore[operator]
                return None
        else:
            found = self.schedules.in_force(printer, at)
            if found is not None:
                priced, schedule = found
                expected = priced.price(pages=pages, colour_pages=colour_pages, copies=copies, duplex=duplex,
                                        paper=paper)
                if abs(expected - cost) > rules.cost_tolerance:  # type: ignore[operator]
                    return None
        return MigratedJob(legacy_id=str(key), user=user, printer=printer, client_host=client_host,
                           document=document, submitted_at=at, pages=pages, copies=copies,
                           colour_pages=colour_pages, duplex=duplex, paper=paper, cost=cost,  # type: ignore[arg-type]
                           schedule=schedule, billing_code=billing_code)

    def _amount(self, value: Any) -> int | None:
        """`money(value)`, remembered for the values seen (see __init__)."""
        key = (type(value), value)
        units = self._amounts.get(key)
        if units is None:
            units = money(value)
            if len(self._amounts) < 100_000:  # bounded: a history of free-form amounts stops being remembered
                self._amounts[key] = units  # type: ignore[assignment]
        return units

    def checked(self, row: tuple) -> MigratedJob:
        """The full checks of one row (see `job`)."""
        g = self.read.get
        rules = self.rules
        enc = rules.text_encoding
        key = self.read.get(row, "key")
        if key in self.duplicates:
            raise Bad("duplicate legacy id: more than one job row has it (all of them are set aside)")
        legacy_id = clean_name(text(key, "legacy id", enc), "legacy id")
        user = text(g(row, "user"), "user", enc)
        if user is None:
            ref = g(row, "user_ref") if self.read.has("user_ref") else None
            if ref is not None:
                raise Bad(f"missing user: user {text(ref, 'user reference', enc)} is not in the users table")
            raise Bad("user is NULL")
        user = clean_name(user, "user")
        printer = clean_name(text(g(row, "printer"), "printer", enc), "printer")
        document = text(g(row, "document"), "document", enc) or ""
        if len(document) > 1024:
            raise Bad("document is longer than 1024 characters")
        if _TEXT_BAD.search(document):
            raise Bad("document holds control characters")
        client_host = text(g(row, "client_host"), "client host", enc) or ""
        if client_host:
            client_host = clean_name(client_host, "client host")
        paper = text(g(row, "paper"), "paper", enc) or "unknown"
        paper = clean_name(paper, "paper", 32)
        billing_code = text(g(row, "billing_code"), "billing code", enc) or ""
        if billing_code:
            billing_code = clean_name(billing_code, "billing code")
        local = moment(g(row, "time"), rules.time_formats, enc)
        if local.year < 1970:
            raise Bad(f"time {local.isoformat(' ')} is before 1970")
        at = self.zone.to_micros(local)
        if at > self.now:
            raise Bad(f"time {local.isoformat(' ')} is in the future")
        copies = _required(integer, g(row, "copies"), "copies")
        if not 1 <= copies <= rules.max_copies:
            raise Bad(f"copies {copies} is not between 1 and {rules.max_copies}")
        if self.total:
            total = _required(integer, g(row, "total_pages"), "total pages")
            if total < 0:
                raise Bad(f"negative pages ({total})")
            if total % copies:
                raise Bad(f"total pages {total} is not a whole number of pages for each of {copies} copies")
            pages = total // copies
        else:
            pages = _required(integer, g(row, "pages"), "pages")
            if pages < 0:
                raise Bad(f"negative pages ({pages})")
        if pages > rules.max_pages or pages * copies > MAX_IMPRESSIONS:
            raise Bad(f"absurd pages: {pages} a copy × {copies} copies")
        if self.flagged_colour:
            colour_pages = pages if _required(flag, g(row, "colour"), "colour flag") else 0
        elif self.read.has("colour_pages"):
            colour_pages = _required(integer, g(row, "colour_pages"), "colour pages")
            if not 0 <= colour_pages <= pages:
                raise Bad(f"colour pages {colour_pages} is not between 0 and the pages ({pages})")
        else:
            colour_pages = 0
        duplex = bool(_required(flag, g(row, "duplex"), "duplex")) if self.read.has("duplex") else False
        cost = _required(money, g(row, "cost"), "cost")
        if cost < 0:
            raise Bad(f"negative cost ({_shown(cost)})")
        schedule = 0
        if self.read.has("unit_cost"):
            rate = _required(money, g(row, "unit_cost"), "cost per unit")
            expected = rate * pages * copies
            if abs(expected - cost) > rules.cost_tolerance:
                raise Bad(f"cost {_shown(cost)} disagrees with {pages * copies} pages × {_shown(rate)} = "
                          f"{_shown(expected)}")
        else:
            found = self.schedules.in_force(printer, at)
            if found is not None:
                priced, schedule = found
                expected = priced.price(pages=pages, colour_pages=colour_pages, copies=copies, duplex=duplex,
                                        paper=paper)
                if abs(expected - cost) > rules.cost_tolerance:
                    raise Bad(f"cost {_shown(cost)} disagrees with pages × rate of the cost setting in force "
                              f"({_shown(expected)})")
        return MigratedJob(legacy_id=legacy_id, user=user, printer=printer, client_host=client_host,
                           document=document, submitted_at=at, pages=pages, copies=copies,
                           colour_pages=colour_pages, duplex=duplex, paper=paper, cost=cost, schedule=schedule,
                           billing_code=billing_code)


def _required(parse: Any, value: Any, what: str) -> Any:
    if value is None:
        raise Bad(f"{what} is NULL")
    try:
        return parse(value)
    except (ValueError, ArithmeticError) as exc:
        raise Bad(f"{what}: {exc}") from None


def _lenient(parse: Any, value: Any) -> int:
    try:
        v = parse(value)
    except (ValueError, ArithmeticError):
        return 0
    return int(v or 0)


def _shown(units: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10_000)
    return f"{sign}{whole}.{frac:04d}"
