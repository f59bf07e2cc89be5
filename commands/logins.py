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

from commands.application import PageLedger
from commands.licensing import Licensing, NotInstalled
from commands.users import ensure_directory_user
from domain.logins import BAD_CREDENTIALS, INACTIVE, NO_SEAT, NOT_ALLOWED, SUCCEEDED, THROTTLED, LoginAttempt
from domain.users import ROLE_AGENT, ROLE_USER, User, user_id
from pageledger.directory import AuthenticationFailed, Directory, DirectoryError
from pageledger.sessions import LoginThrottle

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


def log_in(app: PageLedger, directory: Directory, licensing: Licensing, throttle: LoginThrottle, *,
           login: str, password: str, remote_addr: str, clock: Callable[[], int]) -> LoginResult:
    login = login.strip()
    wait = throttle.retry_after(login, remote_addr)
    if wait:
        return _audit(app, LoginResult(THROTTLED, login, retry_after=wait,
                                       message="too many failed attempts: try again later"), remote_addr, clock)
    try:
        person = directory.authenticate(login, password)
    except AuthenticationFailed:
        throttle.failed(login, remote_addr)
        return _audit(app, LoginResult(BAD_CREDENTIALS, login, message="wrong login or password"), remote_addr, clock)
    except DirectoryError as exc:
        log.error("login of %r: directory unavailable: %s", login, exc)
        return _audit(app, LoginResult(NOT_ALLOWED, login, message="the directory cannot be reached"),
                      remote_addr, clock)
    throttle.succeeded(login)
    try:
        user: User = app.repository.get(user_id(directory.source, person.login))
    except AggregateNotFoundError:
        user = ensure_directory_user(app, directory.source, person, role=ROLE_USER, clock=clock)
    if not user.active:
        return _audit(app, LoginResult(INACTIVE, user.login, message="this account is inactive"), remote_addr, clock)
    if user.role == ROLE_AGENT:
        return _audit(app, LoginResult(NOT_ALLOWED, user.login, message="agents cannot log in to the web site"),
                      remote_addr, clock)
    if user.role == ROLE_USER:
        try:
            seat = licensing.claim_seat(user.login)
        except NotInstalled:
            seat = None
        if seat is None or not seat.granted:
            return _audit(app, LoginResult(NO_SEAT, user.login, message="no licence seat is free for you: "
                                                                        "ask your administrator"), remote_addr, clock)
    return _audit(app, LoginResult(SUCCEEDED, user.login, role=user.role), remote_addr, clock)


def _audit(app: PageLedger, result: LoginResult, remote_addr: str, clock: Callable[[], int]) -> LoginResult:
    app.save(LoginAttempt.record(uuid4(), login=result.login, outcome=result.outcome, remote_addr=remote_addr,
                                 at=clock()))
    log.info("login %s for %r from %s", result.outcome, result.login, remote_addr)
    return result
