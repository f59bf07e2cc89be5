"""Site settings: one aggregate per server whose every change is one field, one event.

An admin changes one field at a time (the console saves a field when it changes, the API
takes a PATCH of one field, the CLI sets one). `FieldChanged` records the field, its old and
new values and who changed it, so the audit log can show every change, and two admins editing
different fields never overwrite each other. A change made from a stale value is refused with
the current value (`StaleSetting`).

Each capability declares its fields below as `SettingField`s, with a default, a kind and a
check. A value is a plain JSON scalar (str, int, float or bool), so every store holds it.
Stored field order of each event is fixed: append new fields at the end, never reorder.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Union
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from eventsourcing.domain import Aggregate, event

Value = Union[str, int, float, bool]

MAX_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def site_settings_id(server_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:site-settings")


class SettingError(ValueError):
    """A value the field does not accept; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class StaleSetting(ValueError):
    """The change was made from a value that is no longer the current one."""

    def __init__(self, field: str, current: Value) -> None:
        super().__init__(f"{field} was changed meanwhile; it is now {current!r}")
        self.field = field
        self.current = current


@dataclass(frozen=True)
class SettingField:
    """One setting: its name, what it means, its default and how a new value is checked.

    `check` returns the value to store (normalised) or raises ValueError with a message an
    admin understands."""

    name: str
    description: str
    default: Value
    kind: str  # "text", "choice", "integer", "number", "boolean", "timezone"
    check: Callable[[object], Value]
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    secret: bool = False  # never shown back nor logged: only whether it is set (shown_value)


def text_field(name: str, description: str, default: str = "", max_length: int = MAX_TEXT) -> SettingField:
    def check(value: object) -> Value:
        if not isinstance(value, str):
            raise ValueError("must be text")
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        if _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        return value.strip()
    return SettingField(name, description, default, "text", check)


def choice_field(name: str, description: str, choices: tuple[str, ...], default: str) -> SettingField:
    def check(value: object) -> Value:
        if value not in choices:
            raise ValueError(f"must be one of: {', '.join(choices)}")
        return value  # type: ignore[return-value]
    return SettingField(name, description, default, "choice", check, choices=choices)


def number_field(name: str, description: str, default: float, minimum: float, maximum: float,
                 integer: bool = False) -> SettingField:
    def check(value: object) -> Value:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        if integer and (isinstance(value, float) and not value.is_integer()):
            raise ValueError("must be a whole number")
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum:g} and {maximum:g}")
        return int(value) if integer else float(value)
    return SettingField(name, description, default, "integer" if integer else "number", check,
                        minimum=minimum, maximum=maximum)


def boolean_field(name: str, description: str, default: bool) -> SettingField:
    def check(value: object) -> Value:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    return SettingField(name, description, default, "boolean", check)


def _check_zone(value: object) -> Value:
    if not isinstance(value, str) or not value or len(value) > 64 or _CONTROL.search(value):
        raise ValueError("must be an IANA time zone name such as Europe/Paris")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Paris") from None
    if value not in available_timezones() and value != "UTC":
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Paris")
    return value


# The fields, by capability. Add a capability's fields as one block.
SITE = (
    SettingField("timezone", "The site's time zone: dates without a time (reports, periods) are days in it",
                 "UTC", "timezone", _check_zone),
)
PRIVACY = (
    choice_field("document_names", "Document names of new jobs and in every report and export: kept, "
                 "masked (only the extension is kept) or omitted", ("keep", "mask", "omit"), "keep"),
)

# Pricing (commands.jobs): how a job is charged when the agent could not tell its colour
# (colour_known false: an encrypted or damaged document, an interpreter out of time, colour
# data sent to a raw queue's device that could not be asked). "colour", the safer choice,
# never undercharges: every page at the colour price; "mono": the pages the agent reported as
# colour at the colour price, the rest mono.
PRICING = (
    choice_field("unknown_colour_charge", "How a job is charged when the agent could not tell its colour: every "
                 "page as colour (never undercharges), or as the agent reported it (mono)", ("colour", "mono"),
                 "colour"),
)

# Reports (projections.reports): the environmental factors (shown in the report with their
# source, see projections.reports.FACTOR_SOURCES) and what counts as a workflow issue.
REPORTS = (
    number_field("report_sheets_per_tree", "Sheets of office paper made from one tree (environmental impact "
                 "report; PaperCut's factor)", 8333, 1, 1_000_000),
    number_field("report_co2e_grams_per_sheet", "Grams of CO2-equivalent per sheet printed, paper and printing "
                 "(environmental impact report; PaperCut's factor)", 12.7, 0, 10_000),
    number_field("report_energy_wh_per_sheet", "Watt-hours of energy per sheet printed, paper production "
                 "included (environmental impact report; SavaPage's factor)", 12.5, 0, 10_000),
    number_field("report_paper_grams_per_sheet", "Grams one sheet weighs (A4 at 80 g/m2 is 4.99 g)",
                 4.99, 0, 1_000),
    number_field("report_repeat_minutes", "The same document printed again by the same user within this many "
                 "minutes counts as a repeated print (workflow issues, potential savings)", 10, 1, 10_080,
                 integer=True),
    number_field("report_large_job_impressions", "A job with at least this many impressions (all copies) is "
                 "unusually large (workflow issues)", 500, 1, 1_000_000_000, integer=True),
)

_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]")
_ADDRESS = re.compile(r"[^@\s<>(),;:\\\"\[\]]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+")


def _check_host(value: object) -> Value:
    if not isinstance(value, str):
        raise ValueError("must be text")
    value = value.strip()
    if value and (len(value) > 253 or not _HOST.fullmatch(value)):
        raise ValueError("must be a host name or an address, such as mail.example.com (empty: the server's "
                         "configuration)")
    return value


def _check_sender(value: object) -> Value:
    if not isinstance(value, str):
        raise ValueError("must be text")
    value = value.strip()
    if value and (len(value) > 254 or not _ADDRESS.fullmatch(value)):
        raise ValueError("must be one e-mail address, such as pageledger@example.com")
    return value


# A secret field's value as recorded: sealed by the command (adapters.setting_secrets) after it
# was checked as typed, so the log never holds the secret itself.
SEALED_PREFIX = "sealed:v1:"
_SEALED = re.compile(r"sealed:v1:[A-Za-z0-9_-]{40,512}={0,2}")


def _check_password(value: object) -> Value:
    if not isinstance(value, str):
        raise ValueError("must be text")
    if _SEALED.fullmatch(value):
        return value
    if len(value) > 256:
        raise ValueError("at most 256 characters")
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    if not value.isascii():
        raise ValueError("only ASCII characters: the SMTP login is sent as ASCII")
    return value  # as typed: spaces may be part of it


# Mail (adapters.mail): the SMTP server the scheduled reports and the notices are sent through.
# While `smtp_host` is empty the server's own configuration (PAGELEDGER_SMTP_*) is used; once it
# is set, these fields are. The password is write-only: shown and logged only as "set".
MAIL = (
    SettingField("smtp_host", "SMTP server that sends the scheduled reports and notices (empty: the server's "
                 "configuration, PAGELEDGER_SMTP_*)", "", "text", _check_host),
    number_field("smtp_port", "SMTP port (25, 587 for submission with STARTTLS)", 25, 1, 65535, integer=True),
    boolean_field("smtp_starttls", "Use STARTTLS before sending (and before logging in)", False),
    text_field("smtp_username", "SMTP login (empty: send without logging in)", "", max_length=254),
    SettingField("smtp_password", "SMTP password (never shown: only whether it is set)", "", "password",
                 _check_password, secret=True),
    SettingField("smtp_sender", "The From address of the mail sent (empty: the server's configuration)", "",
                 "text", _check_sender),
)

FIELDS: dict[str, SettingField] = {f.name: f for f in (*SITE, *PRIVACY, *PRICING, *REPORTS, *MAIL)}
SECRET_SETTINGS = frozenset(name for name, spec in FIELDS.items() if spec.secret)


def shown_value(field: str, value: Value) -> Value:
    """A value as it may be shown or logged: a secret field's is only "set" or "" (not set)."""
    if field in SECRET_SETTINGS:
        return "set" if value else ""
    return value


def check_value(field: str, value: object) -> Value:
    """The value to store for `field`, or SettingError naming the field."""
    spec = FIELDS.get(field)
    if spec is None:
        raise SettingError(field, "no such setting")
    try:
        return spec.check(value)
    except ValueError as exc:
        raise SettingError(field, str(exc)) from None


class SiteSettings(Aggregate):
    """The site's settings; only fields that were changed are held (the rest are defaults)."""

    @event("Created")
    def __init__(self) -> None:
        self.values: dict[str, Value] = {}

    @classmethod
    def create(cls, settings_id: UUID) -> "SiteSettings":
        return cls._create(cls.Created, id=settings_id)

    def value(self, field: str) -> Value:
        return self.values.get(field, FIELDS[field].default if field in FIELDS else None)

    def change(self, field: str, new: object, expected: object, by: str, *, check_expected: bool = True) -> bool:
        """Change one field; False when it already holds that value (nothing recorded)."""
        value = check_value(field, new)
        current = self.value(field)
        # A secret is changed from what was shown of it ("set" or ""), never from the secret itself.
        if check_expected and expected != shown_value(field, current):
            raise StaleSetting(field, shown_value(field, current))
        if value == current and type(value) is type(current):
            return False
        self._field_changed(field=field, old=current, new=value, by=by)
        return True

    @event("FieldChanged")
    def _field_changed(self, field: str, old: Value, new: Value, by: str) -> None:
        self.values[field] = new
