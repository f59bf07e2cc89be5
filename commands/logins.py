"""Logging in to the web site: throttle, check against the directory, seat, audit.

Every attempt becomes a LoginAttempt event (the audit trail), whatever its outcome; the
password never goes anywhere but the directory's bind. A user (role "user") takes a licence
seat at their first login and is refused when none is left; admins and auditors are never
refused for want of a seat, so an expired installation can always be re-activated.
"""
from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Callable
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from adapters.directory import AuthenticationFailed, DirectoryError
from adapters.event_store import PageLedger
from adapters.personal_keys import card_digest
from commands.licensing import Licensing, NotInstalled
from commands.ports import Clock, Directory, LoginThrottle, UserIndex
from commands.users import ensure_directory_user
from domain.logins import BAD_CREDENTIALS, INACTIVE, NO_SEAT, NOT_ALLOWED, SUCCEEDED, THROTTLED, LoginAttempt
from domain.users import ROLE_AGENT, ROLE_USER, User, card_problem, pin_problem

log = logging.getLogger("pageledger.audit")


@dataclass(frozen=True)
class LoginResult:
    outcome: str  # domain.logins outcomes
    login: str = ""
    role: str = ""
    retry_after: int = 0  # seconds, when throttled
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == SUCCEEDED


class LogIn:
    """Check a login and password against the configured directory, claim a seat, audit it."""

    def __init__(self, app: PageLedger, directory: Callable[[], Directory], licensing: Licensing,
                 throttle: LoginThrottle, clock: Clock) -> None:
        self.app = app
        self.directory = directory  # the configured source, looked up at each login
        self.licensing = licensing
        self.throttle = throttle
        self.clock = clock

    def __call__(self, *, login: str, password: str, remote_addr: str) -> LoginResult:
        login = login.strip()
        # Counted as a failure before the password is checked, in one atomic step with the
        # check of the count: concurrent guesses cannot all read "under the limit".
        reservation = self.throttle.reserve(login, remote_addr)
        if reservation.retry_after:
            return self._audit(LoginResult(THROTTLED, login, retry_after=reservation.retry_after,
                                           message="too many failed attempts: try again later"), remote_addr)
        directory = self.directory()
        try:
            person = directory.authenticate(login, password)
        except AuthenticationFailed:  # the reservation stays: it is the failure
            return self._audit(LoginResult(BAD_CREDENTIALS, login, message="wrong login or password"), remote_addr)
        except DirectoryError as exc:
            self.throttle.release(reservation)
            log.error("login of %r: directory unavailable: %s", login, exc)
            return self._audit(LoginResult(NOT_ALLOWED, login, message="the directory cannot be reached"),
                               remote_addr)
        self.throttle.release(reservation)
        self.throttle.succeeded(login)
        try:
            user: User = self.app.repository.get(self.app.user_id(directory.source, person.login))
        except AggregateNotFoundError:
            user = ensure_directory_user(self.app, directory.source, person, role=ROLE_USER, clock=self.clock)
        return admit(self.app, self.licensing, self.clock, user, remote_addr)

    def _audit(self, result: LoginResult, remote_addr: str) -> LoginResult:
        return audit_login(self.app, self.clock, result, remote_addr)


def admit(app: PageLedger, licensing: Licensing, clock: Clock, user: User, remote_addr: str) -> LoginResult:
    """Whoever proved who they are (password, or card and PIN) logs in if Active, not an agent,
    and (role user) given a licence seat; the outcome is audited."""
    if not user.active:
        return audit_login(app, clock, LoginResult(INACTIVE, user.login, message="this account is inactive"),
                           remote_addr)
    if user.role == ROLE_AGENT:
        return audit_login(app, clock, LoginResult(NOT_ALLOWED, user.login,
                                                   message="agents cannot log in to the web site"), remote_addr)
    if user.role == ROLE_USER:
        try:
            seat = licensing.claim_seat(user.login)
        except NotInstalled:
            seat = None
        if seat is None or not seat.granted:
            return audit_login(app, clock, LoginResult(NO_SEAT, user.login, message="no licence seat is free for "
                                                                                    "you: ask your administrator"),
                               remote_addr)
    return audit_login(app, clock, LoginResult(SUCCEEDED, user.login, role=user.role), remote_addr)


def audit_login(app: PageLedger, clock: Clock, result: LoginResult, remote_addr: str) -> LoginResult:
    app.save(LoginAttempt.record(uuid4(), login=result.login, outcome=result.outcome, remote_addr=remote_addr,
                                 at=clock()))
    log.info("login %s for %r from %s", result.outcome, result.login, remote_addr)
    return result


CARD_THROTTLE_PREFIX = "card:"  # a card's failures are counted under this key, apart from any login's


class LogInWithCard:
    """Log in with a card number and its holder's PIN, as at a release station (the /release page
    on a phone). Throttled as a password login is, in the same table: wrong PINs per card (the key
    "card:" and the card's keyed digest) and per client address; an unknown card, a user without a PIN and a wrong PIN
    all answer the same "wrong card number or PIN" and count as failures. The holder is looked up
    in the users read model and confirmed on their aggregate (card and PIN digest), then admitted
    as a password login is (Active, not an agent, a seat), and every attempt audited under the
    holder's login, or under "card" when no one holds it (never the card number: it releases jobs)."""

    def __init__(self, app: PageLedger, index: UserIndex, pin_digest: Callable[[str], str], licensing: Licensing,
                 throttle: LoginThrottle, clock: Clock) -> None:
        self.app = app
        self.index = index
        self.pin_digest = pin_digest
        self.licensing = licensing
        self.throttle = throttle
        self.clock = clock

    def __call__(self, *, card: str, pin: str, remote_addr: str) -> LoginResult:
        card = card.strip(" ").upper()  # as SetCard stores it and a hex reader sends it
        if not card or card_problem(card):
            card = "?"  # garbage is a wrong card like any other (and throttled as one key)
        key = self._throttle_key(card)
        reservation = self.throttle.reserve(key, remote_addr)
        if reservation.retry_after:
            return audit_login(self.app, self.clock, LoginResult(
                THROTTLED, "card", retry_after=reservation.retry_after,
                message="too many failed attempts: try again later"), remote_addr)
        user = self._holder(card)
        digest = self.pin_digest(pin) if not pin_problem(pin.strip()) else ""
        if user is None or not user.pin_digest or not digest or not hmac.compare_digest(user.pin_digest, digest):
            # the reservation stays: it is the failure
            return audit_login(self.app, self.clock, LoginResult(BAD_CREDENTIALS, user.login if user else "card",
                                                                 message="wrong card number or PIN"), remote_addr)
        self.throttle.release(reservation)
        self.throttle.succeeded(key)
        return admit(self.app, self.licensing, self.clock, user, remote_addr)

    def _throttle_key(self, card: str) -> str:
        """The throttle counts a card under its keyed digest, never its number (the site's privacy
        key; the number itself without one: an in-memory store)."""
        digest = card_digest(getattr(self.app, "privacy_secret", None), card)
        return CARD_THROTTLE_PREFIX + (digest.hex() if digest else card)

    def _holder(self, card: str) -> User | None:
        holder = self.index.card_holder(card) if card != "?" else None
        if holder is None:
            return None
        try:
            user: User = self.app.repository.get(UUID(holder))
        except AggregateNotFoundError:
            return None
        return user if user.card == card else None
