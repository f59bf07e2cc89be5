"""The audit-log report: who changed what, when, with the old and the new value.

Read from the log itself (admin changes are few; a read model would be one more thing to
trust): every event of settings, printers (costs, secure queues), users, access tokens, the
licence and the setup, in log order. An event that names its author (`by`: site settings,
printers' costs and release settings, roles, cards and PINs, the licence's unlicensed-tracking
switch; events stored before `by` was appended to them have "") says who; the others were not
recorded with their author and say so ("not recorded"). Old values come from the event itself (`SiteSettings.FieldChanged`
carries old and new) or, for events that only carry the new value, from the aggregate's
previous event in the same walk of the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from adapters.codec import short_topic
from domain.installation import Installation
from domain.licence import Licence
from domain.printers import Printer
from domain.site_settings import SiteSettings
from domain.tokens import AccessToken
from domain.users import User
from projections.event_history import EventHistory

NOT_RECORDED = "not recorded"

ADMIN_EVENTS = (
    SiteSettings.FieldChanged, Printer.Registered, Printer.CostScheduleChanged, Printer.SecureHoldChanged,
    Printer.HoldTimeChanged, Printer.ReleaseCodeModeChanged, Printer.PrinterGroupChanged, Printer.CardReaderAssociated,
    User.Imported, User.ProfileChanged, User.Activated, User.Deactivated, User.CardAssigned, User.PinChanged,
    User.RoleChanged, User.PasswordChanged, User.Removed, User.Readded,
    AccessToken.Issued, AccessToken.Revoked,
    Licence.Installed, Licence.Activated, Licence.UnlicensedTrackingChanged,
    Installation.SetupCompleted,
)
ADMIN_TOPICS = tuple(short_topic(cls) for cls in ADMIN_EVENTS)
AREAS = {"SiteSettings": "settings", "Printer": "printers", "User": "users", "AccessToken": "tokens",
         "Licence": "licence", "Installation": "setup"}
_NOT_CHANGES = frozenset({"at", "by"})
# Followed for the values they set, not shown: a printer is registered by its first job.
_NOT_SHOWN = frozenset({short_topic(Printer.Registered)})


@dataclass(frozen=True)
class AdminChange:
    position: int
    at: str  # ISO 8601, when it was recorded
    at_us: int
    area: str  # settings, printers, users, tokens, licence, setup
    subject: str  # the setting, printer, login, token or "licence"
    change: str  # the event's name
    field: str
    old: Any
    new: Any
    by: str


def admin_changes(history: EventHistory, *, since: int | None = None, until: int | None = None,
                  area: str | None = None) -> Iterator[AdminChange]:
    """Every admin change recorded in [since, until) (µs), oldest first."""
    names: dict[str, str] = {}  # aggregate id -> login, printer or token name
    last: dict[tuple[str, str], Any] = {}  # (aggregate, field) -> value before
    after = 0
    while True:
        rows = history.log.select(after=after, limit=2000, topics=ADMIN_TOPICS)
        if not rows:
            return
        for raw in rows:
            after = raw[0]
            event = history.decode(raw)
            outer, name = event.type.split(".", 1)
            fields = event.fields
            subject = names.setdefault(event.aggregate, str(fields.get("login") or fields.get("name") or
                                                             ("licence" if outer == "Licence" else event.aggregate)))
            shown = (event.type not in _NOT_SHOWN
                     and (since is None or event.recorded_us >= since) and (until is None or event.recorded_us < until)
                     and (area is None or AREAS.get(outer) == area))
            by = str(fields.get("by") or NOT_RECORDED)
            if name == "FieldChanged":
                changes = [(str(fields["field"]), fields["old"], fields["new"])]
                subject = "site"
            else:
                changes = []
                for field, value in fields.items():
                    if field in _NOT_CHANGES:
                        continue
                    if isinstance(value, dict) and field == "profile":
                        for key, inner in value.items():
                            changes.append((f"profile.{key}", last.get((event.aggregate, f"profile.{key}")), inner))
                    else:
                        changes.append((field, last.get((event.aggregate, field)), value))
                if not changes:
                    changes = [("", None, None)]
            for field, old, new in changes:
                if field:
                    last[(event.aggregate, field)] = new
                if shown:
                    yield AdminChange(event.position, event.recorded_at, event.recorded_us, AREAS.get(outer, outer),
                                      subject, event.type, field, old, new, by)
