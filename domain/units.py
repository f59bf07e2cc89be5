"""The units every stored figure is in: times as int µs since the Unix epoch (UTC), days as
int days since 1970-01-01 (UTC), money as int 1/10,000 of the currency unit.

One home for each, so that events, read models, the API and the licence files agree.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
MONEY_SCALE = 10_000

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --- times ----------------------------------------------------------------------------------

def to_micros(dt: datetime) -> int:
    """A datetime as µs since the epoch; a naive one is taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


def from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us // MICROS_PER_SECOND, tz=timezone.utc).replace(microsecond=us % MICROS_PER_SECOND)


def iso(us: int, *, whole_seconds: bool = False) -> str | None:
    """ISO 8601 (UTC, with offset) of a time in µs; None for 0, which means "never" or "unset".
    `whole_seconds` drops the fraction (licence keys and files are signed in that form)."""
    if not us:
        return None
    if whole_seconds:
        us -= us % MICROS_PER_SECOND
    return from_micros(us).isoformat()


def from_iso(value: str | None) -> int:
    """µs of an ISO 8601 time (naive = UTC); 0 for None or ""."""
    if not value:
        return 0
    return to_micros(datetime.fromisoformat(value))


# --- days -----------------------------------------------------------------------------------

def day_of(us: int) -> int:
    """The UTC day (days since 1970-01-01) a time in µs falls on."""
    return us // MICROS_PER_DAY


def first_day_from(us: int) -> int:
    """The first whole day that starts at or after `us` (an exclusive upper bound rounded up)."""
    return -(-us // MICROS_PER_DAY)


def day_iso(day: int) -> str:
    """A day number as YYYY-MM-DD."""
    return from_micros(day * MICROS_PER_DAY).date().isoformat()


# --- money ----------------------------------------------------------------------------------

def parse_money(text: str) -> int:
    """A decimal amount as 1/10,000 units: "0.05" → 500. At most four decimals."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount of money") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not an amount of money")
    scaled = value * MONEY_SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r}: at most four decimal places")
    if value < 0:
        raise ValueError(f"{text!r}: prices cannot be negative")
    return int(scaled)


def format_money(units: int) -> str:
    """1/10,000 units as a decimal string: 2000 → "0.2000"."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), MONEY_SCALE)
    return f"{sign}{whole}.{frac:04d}"
