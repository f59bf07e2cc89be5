"""Licence: what this installation may do, until when, and which users hold its seats.

There is one Licence aggregate per installation (see `licence_id`). Seats are decided inside
it, so the version check of the event store (optimistic concurrency) is what stops two
servers, or two requests, from handing out the last seat twice: whoever saves second gets an
IntegrityError, reloads and decides again.

Times are int µs since the Unix epoch, UTC, and always passed in by the caller (the
application's clock), so every rule here is pure and can be tested at any instant.

Field order of each event is its stored order (events are stored as arrays): append new
fields at the end, never reorder or remove.
"""
from __future__ import annotations

from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.units import MICROS_PER_DAY

SUITE = "suite"
ANALYSIS = "analysis"
DEVICE_MANAGEMENT = "device_management"
TRIAL = "trial"
LICENCE_TYPES = (SUITE, ANALYSIS, DEVICE_MANAGEMENT, TRIAL)

TRIAL_SEATS = 5
TRIAL_DAYS = 15

# What a licence type switches on. Administration login is not a feature: it is always
# allowed, so that an expired installation can still be activated.
JOB_TRACKING = "job_tracking"
SECURE_PRINTING = "secure_printing"
POPUPS = "popups"
RULES = "rules"
DEVICE_REPORTING = "device_reporting"
REPORTS = "reports"
ALL_FEATURES = frozenset({JOB_TRACKING, SECURE_PRINTING, POPUPS, RULES, DEVICE_REPORTING, REPORTS})
FEATURES_BY_TYPE: dict[str, frozenset[str]] = {
    SUITE: ALL_FEATURES,
    TRIAL: ALL_FEATURES,
    ANALYSIS: ALL_FEATURES - {SECURE_PRINTING, POPUPS, RULES},
    DEVICE_MANAGEMENT: frozenset({DEVICE_REPORTING, REPORTS}),
}

ACTIVATED_ONLINE = "online"
ACTIVATED_BY_FILE = "file"

# Outcomes of claiming a seat.
SEAT_HELD = "held"  # the user already had one
SEAT_ASSIGNED = "assigned"  # the user took a free one now
SEAT_DENIED = "denied"  # no seat for this user

DENIED_NO_SEATS = "no_seats"
DENIED_EXPIRED = "expired"


def licence_id(server_id: str) -> UUID:
    """The id of the installation's one Licence aggregate."""
    return uuid5(NAMESPACE_URL, f"pageledger:{server_id}:licence")


def seat_key(login: str) -> str:
    """Seats belong to people, whatever case the print server spelt their login in."""
    return login.strip().lower()


class LicenceError(ValueError):
    """A licence operation that the current terms do not allow."""


@dataclass(frozen=True)
class SeatDecision:
    outcome: str  # SEAT_HELD, SEAT_ASSIGNED or SEAT_DENIED
    reason: str = ""  # why it was denied

    @property
    def granted(self) -> bool:
        return self.outcome != SEAT_DENIED


class Licence(Aggregate):
    """The installation's licence terms, its activation history and its seat holders."""

    @event("Installed")
    def __init__(self, type: str, seats: int, expires_at: int, installed_at: int) -> None:
        self.type = type
        self.seats = seats
        self.expires_at = expires_at  # 0: never expires
        self.installed_at = installed_at
        self.key = ""
        self.company = ""
        self.method = ""
        self.host = ""
        self.mac = ""
        self.activated_at = 0
        self.seated: dict[str, int] = {}  # seat key -> when it was assigned
        self.denied: dict[str, int] = {}  # seat key -> when first denied (until seated or re-licensed)
        self.track_unlicensed = False  # admin setting: track jobs of users without a seat
        self.last_notice_day = -1  # day number of the last denial notice sent to admins
        self.last_notice_at = 0

    @classmethod
    def install_trial(cls, licence_id: UUID, now: int) -> "Licence":
        """A new installation on trial: every feature, 5 users, for 15 days from now."""
        return cls._create(cls.Installed, id=licence_id, type=TRIAL, seats=TRIAL_SEATS,
                           expires_at=now + TRIAL_DAYS * MICROS_PER_DAY, installed_at=now)

    @classmethod
    def install(cls, licence_id: UUID, *, type: str, seats: int, expires_at: int, now: int) -> "Licence":
        """A new installation whose first licence is a purchased one (activated in the same save)."""
        _check_terms(type, seats, expires_at)
        return cls._create(cls.Installed, id=licence_id, type=type, seats=seats,
                           expires_at=expires_at, installed_at=now)

    # --- activation -------------------------------------------------------------------------

    def activate(self, *, key: str, company: str, method: str, host: str, mac: str,
                 type: str, seats: int, expires_at: int, now: int) -> None:
        """Apply a licence whose signature, company, host and expiry were checked by the caller.

        Seat holders keep their seats even if the new licence has fewer: nobody is thrown out
        mid-day; new users are simply denied until enough seats are freed.
        """
        _check_terms(type, seats, expires_at)
        if method not in (ACTIVATED_ONLINE, ACTIVATED_BY_FILE):
            raise LicenceError(f"unknown activation method {method!r}")
        if expires_at and expires_at <= now:
            raise LicenceError("the licence has already expired")
        self._activated(key=key, company=company, method=method, host=host, mac=mac, type=type,
                        seats=seats, expires_at=expires_at, at=now)

    @event("Activated")
    def _activated(self, key: str, company: str, method: str, host: str, mac: str, type: str,
                   seats: int, expires_at: int, at: int) -> None:
        self.key = key
        self.company = company
        self.method = method
        self.host = host
        self.mac = mac
        self.type = type
        self.seats = seats
        self.expires_at = expires_at
        self.activated_at = at
        self.denied = {}  # new terms: a user refused before may be refused again, and said so

    def set_track_unlicensed(self, enabled: bool, *, by: str, now: int) -> bool:
        """Admin setting "track unlicensed users": their jobs are tracked (not denied) without a seat."""
        if enabled == self.track_unlicensed:
            return False
        self._unlicensed_tracking_changed(enabled=enabled, by=by, at=now)
        return True

    @event("UnlicensedTrackingChanged")
    def _unlicensed_tracking_changed(self, enabled: bool, by: str, at: int) -> None:
        self.track_unlicensed = enabled

    # --- terms ------------------------------------------------------------------------------

    def is_valid(self, now: int) -> bool:
        return not self.expires_at or now < self.expires_at

    def features(self, now: int) -> frozenset[str]:
        """What may run now. An expired licence (a trial after 15 days) switches everything off."""
        if not self.is_valid(now):
            return frozenset()
        return FEATURES_BY_TYPE[self.type]

    def allows(self, feature: str, now: int) -> bool:
        return feature in self.features(now)

    @property
    def seats_used(self) -> int:
        return len(self.seated)

    def holds_seat(self, login: str) -> bool:
        return seat_key(login) in self.seated

    # --- seats ------------------------------------------------------------------------------

    def claim_seat(self, login: str, now: int) -> SeatDecision:
        """A user is about to be counted (a job tracked or secured, a web login).

        The first time, they take a free seat; when none is left, or the licence has expired,
        they are denied. A denial is recorded on the licence once per user (until they get a
        seat, or new terms are activated): every later refusal is already a fact of its own
        (PrintJob.Denied, a LoginAttempt), and the licence's history must stay short because
        every seat decision replays it.
        """
        key = seat_key(login)
        if not key:
            raise LicenceError("a seat needs a login")
        if not self.is_valid(now):
            return self._deny(key, DENIED_EXPIRED, now)
        if key in self.seated:
            return SeatDecision(SEAT_HELD)
        if len(self.seated) >= self.seats:
            return self._deny(key, DENIED_NO_SEATS, now)
        self._seat_assigned(user=key, at=now)
        return SeatDecision(SEAT_ASSIGNED)

    def _deny(self, key: str, reason: str, now: int) -> SeatDecision:
        if key not in self.denied:
            self._seat_denied(user=key, reason=reason, at=now)
        return SeatDecision(SEAT_DENIED, reason)

    def release_seat(self, login: str, now: int, reason: str = "inactive") -> bool:
        """Free a user's seat (an admin set them Inactive, or they left the directory)."""
        key = seat_key(login)
        if key not in self.seated:
            return False
        self._seat_released(user=key, reason=reason, at=now)
        return True

    @event("SeatAssigned")
    def _seat_assigned(self, user: str, at: int) -> None:
        self.seated[user] = at
        self.denied.pop(user, None)

    @event("SeatReleased")
    def _seat_released(self, user: str, reason: str, at: int) -> None:
        self.seated.pop(user, None)

    @event("SeatDenied")
    def _seat_denied(self, user: str, reason: str, at: int) -> None:
        self.denied[user] = at


    def record_denial_notice(self, day: int, users: list[str], now: int) -> bool:
        """Claim today's one notice to admins about denied users; False if it was already sent.

        Recorded *before* the e-mail goes out, so two workers racing cannot both send it
        (the second save fails on the version check): at most one notice a day.
        """
        if day <= self.last_notice_day or not users:
            return False
        self._denial_notice_sent(day=day, users=sorted(users), at=now)
        return True

    @event("DenialNoticeSent")
    def _denial_notice_sent(self, day: int, users: list, at: int) -> None:
        self.last_notice_day = day
        self.last_notice_at = at


def _check_terms(type: str, seats: int, expires_at: int) -> None:
    if type not in LICENCE_TYPES:
        raise LicenceError(f"unknown licence type {type!r}; expected one of {', '.join(LICENCE_TYPES)}")
    if not isinstance(seats, int) or seats < 0:
        raise LicenceError("seats must be a whole number, 0 or more")
    if not isinstance(expires_at, int) or expires_at < 0:
        raise LicenceError("expiry must be µs since the epoch, or 0 for never")
