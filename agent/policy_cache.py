"""What the agent remembers of the server between jobs: whether it ever connected, and the
server's offline policy (GET /Services/policy), in ``<state dir>/policy.json``.

Until the first successful contact the install-time ``IgnoreDisconnected`` decides what
happens to jobs while the server is unreachable; afterwards the server's cached policy does.
"""
from __future__ import annotations

import json
import os
import time
from collections import namedtuple

POLICY_FILE = "policy.json"
# Fetch the policy again after this long (seconds) when the server answers.
POLICY_MAX_AGE = 600.0


class CachedPolicy(namedtuple("CachedPolicy", "connected_at offline fetched_at", defaults=(None, None, None))):
    """When the agent first reached the server, and the offline policy it last heard
    (``offline``: "print" | "refuse", as the server said; None before it said)."""

    __slots__ = ()

    @property
    def connected_once(self) -> bool:
        return self.connected_at is not None

    def is_stale(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.fetched_at is None or now - self.fetched_at > POLICY_MAX_AGE

    def offline_action(self, ignore_disconnected: bool) -> str:
        """"print" or "refuse" for a job while the server cannot be reached."""
        if self.connected_once and self.offline in ("print", "refuse"):
            return self.offline
        return "print" if ignore_disconnected else "refuse"


class PolicyStore:
    """``policy.json`` in the state dir, replaced atomically."""

    def __init__(self, state_dir):
        # os.path, not pathlib: a backend process does not import pathlib.
        self.path = os.path.join(os.fspath(state_dir), POLICY_FILE)

    def load(self) -> CachedPolicy:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.loads(handle.read())
        except (FileNotFoundError, ValueError):
            return CachedPolicy()
        return CachedPolicy(data.get("connected_at"), data.get("offline"), data.get("fetched_at"))

    def save(self, policy: CachedPolicy) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{POLICY_FILE}.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"connected_at": policy.connected_at, "offline": policy.offline,
                                     "fetched_at": policy.fetched_at}))
        os.replace(tmp, self.path)

    def record_connection(self, offline: str | None = None) -> CachedPolicy:
        current = self.load()
        if offline is None and current.connected_at is not None:
            return current  # nothing new to keep: no file written on every job
        now = time.time()
        updated = CachedPolicy(current.connected_at or now,
                               offline if offline is not None else current.offline,
                               now if offline is not None else current.fetched_at)
        self.save(updated)
        return updated
