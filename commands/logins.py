"""Logging in to the web site: throttle, check against the directory, seat, audit.

Every attempt becomes a LoginAttempt event (the audit trail), whatever its outcome; the
password never goes anywhere but the directory's bind. A user (role "user") takes a licence
seat at their first login and is refused when none is left; admins and auditors are never
refused for want of a seat, so an expired installation can always be re-activated.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable
from uuid import uuid4

from eventsourcing.application import AggregateNotFoundError

from adapters.directory import AuthenticationFailed, DirectoryError
from adapters.event_store import PageLedger
from commands.licensing import Licensing, NotInstalled
from commands.ports import Clock, Directory, LoginThrottle
from commands.users import ensure_directory_user
from domain.logins import BAD_CREDENTIALS, INACTIVE, NO_SEAT, NOT_ALLOWED, SUCCEEDED, THROTTLED, LoginAttempt
from domain.users import ROLE_AGENT, ROLE_USER, User, user_id

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
            user: User = self.app.repository.get(user_id(directory.source, person.login))
        except AggregateNotFoundError:
            user = ensure_directory_user(self.app, directory.source, person, role=ROLE_USER, clock=self.clock)
        if not user.active:
            return self._audit(LoginResult(INACTIVE, user.login, message="this account is inactive"), remote_addr)
        if user.role == ROLE_AGENT:
            return self._audit(LoginResult(NOT_ALLOWED, user.login, message="agents cannot log in to the web site"),
                               remote_addr)
        if user.role == ROLE_USER:
            try:
                seat = self.licensing.claim_seat(user.login)
            except NotInstalled:
                seat = None
            if seat is None or not seat.granted:
                return self._audit(LoginResult(NO_SEAT, user.login, message="no licence seat is free for you: "
                                                                            "ask your administrator"), remote_addr)
        return self._audit(LoginResult(SUCCEEDED, user.login, role=user.role), remote_addr)

    def _audit(self, result: LoginResult, remote_addr: str) -> LoginResult:
        self.app.save(LoginAttempt.record(uuid4(), login=result.login, outcome=result.outcome,
                                          remote_addr=remote_addr, at=self.clock()))
        log.info("login %s for %r from %s", result.outcome, result.login, remote_addr)
        return result
