"""How every command saves under optimistic concurrency: load, decide, save — and when another
writer saved the same aggregate first, load again and decide again on its news.

The event store refuses a second event at the same aggregate version (IntegrityError), so a
decision made on stale state can never be saved; retrying is how the loser catches up. Pauses
are jittered so that many contenders do not collide again in lockstep, and the number of
attempts is bounded so a hot spot fails loudly instead of spinning.
"""
from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

from eventsourcing.persistence import IntegrityError

log = logging.getLogger("pageledger.commands")

T = TypeVar("T")

ATTEMPTS = 50


class KeptConflicting(RuntimeError):
    """Every attempt lost the race to another writer of the same aggregate."""


def retry_on_conflict(attempt: Callable[[], T], *, what: str, attempts: int = ATTEMPTS,
                      on_conflict: Callable[[], None] | None = None) -> T:
    """Run `attempt` (load → decide → save) until it saves without a version conflict.

    `on_conflict` runs after each lost race, before the next attempt (to forget cached state).
    """
    for n in range(1, attempts + 1):
        try:
            return attempt()
        except IntegrityError:
            if on_conflict is not None:
                on_conflict()
            if n == attempts:
                break
            log.debug("%s: another writer saved first; deciding again (attempt %d)", what, n + 1)
            time.sleep(random.uniform(0, min(0.05, 0.002 * n)))
    raise KeptConflicting(f"could not {what}: it kept changing ({attempts} attempts)")
