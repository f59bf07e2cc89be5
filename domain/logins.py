"""LoginAttempt: every attempt to log in, kept as an audit record (one event each).

Failed attempts are facts too: they are what an auditor looks at after a brute-force
attempt, and they survive any rebuild of the read models. Passwords never enter them.
"""
from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

SUCCEEDED = "succeeded"
BAD_CREDENTIALS = "bad_credentials"
THROTTLED = "throttled"
NO_SEAT = "no_seat"
INACTIVE = "inactive"
NOT_ALLOWED = "not_allowed"  # e.g. the directory is unreachable, or no role may log in
OUTCOMES = (SUCCEEDED, BAD_CREDENTIALS, THROTTLED, NO_SEAT, INACTIVE, NOT_ALLOWED)


class LoginAttempt(Aggregate):
    @event("Recorded")
    def __init__(self, login: str, outcome: str, remote_addr: str, at: int) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown login outcome {outcome!r}")
        self.login = login
        self.outcome = outcome
        self.remote_addr = remote_addr
        self.at = at

    @classmethod
    def record(cls, attempt_id: UUID, *, login: str, outcome: str, remote_addr: str, at: int) -> "LoginAttempt":
        return cls._create(cls.Recorded, id=attempt_id, login=login[:255], outcome=outcome,
                           remote_addr=remote_addr[:64], at=at)
