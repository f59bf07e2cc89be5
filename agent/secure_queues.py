"""What the agent knows of secure queues: which they are, their release queues, fail-closed rules.

- **Which queues are secure** is kept in ``secure.json`` in the state dir: named at install
  (``--secure-queues``), and learned from the server's answers (a "hold" makes a queue secure,
  a "print" makes it an ordinary one), so that the backend knows while the server cannot be
  reached, when it matters most.
- **Fail closed**: a job on a secure queue is never printed unreleased. With the server
  unreachable, the admin's choice (``SecureOffline`` in package.ini) decides: ``retry`` (the
  default) ends the backend with CUPS_BACKEND_RETRY, so cupsd keeps the job and its data in its
  own spool and runs it again later (JobRetryInterval); the retry that reaches the server tracks
  and holds it. ``refuse`` cancels it with a message for its user. ``IgnoreDisconnected`` only
  ever governs tracking-only queues.
- **Release queues**: beside each secure queue, a raw, unshared queue ``<queue>-release`` whose
  device URI is the real printer; the release service submits released jobs there.
- **Release jobs** carry ``pageledger-job=<id>`` (in argv[5]): the backend never tracks or holds
  them a second time, should a release queue ever be wrapped. The option counts only on a release
  queue: any user can type ``lp -o pageledger-job=x``, and on any other queue that job is tracked
  (and held on a secure queue) like every other.
"""
from __future__ import annotations

import json
import os

SECURE_FILE = "secure.json"
RELEASE_JOB_OPTION = "pageledger-job"
RELEASE_SUFFIX = "-release"
OFFLINE_MODES = ("retry", "refuse")


def release_queue_name(queue: str) -> str:
    """The release queue beside `queue` (the server's domain.printers.release_queue_name agrees)."""
    return f"{queue}{RELEASE_SUFFIX}"


def is_release_queue(queue: str) -> bool:
    return len(queue) > len(RELEASE_SUFFIX) and queue.lower().endswith(RELEASE_SUFFIX)


def is_release_job(options: dict[str, str], queue: str) -> str:
    """The PageLedger job id a release job carries on a release queue, "" for any other job
    (the option on an ordinary or secure queue is a user's attempt to skip accounting)."""
    value = options.get(RELEASE_JOB_OPTION, "").strip()
    return value if 0 < len(value) <= 64 and is_release_queue(queue) else ""


class SecureQueues:
    # A plain class: the backend's hot path does not import dataclasses (tests/unit/test_agent_hot_path_imports.py).
    def __init__(self, queues: set[str] | None = None, offline: str = "retry") -> None:
        self.queues = set() if queues is None else queues
        self.offline = offline

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecureQueues) and (self.queues, self.offline) == (other.queues, other.offline)

    def is_secure(self, queue: str) -> bool:
        return queue.lower() in self.queues


class SecureQueueStore:
    """``secure.json``, replaced atomically (the backend runs as root: the state dir is private)."""

    def __init__(self, state_dir) -> None:
        # os.path, not pathlib: a backend process does not import pathlib.
        self.path = os.path.join(os.fspath(state_dir), SECURE_FILE)

    def load(self) -> SecureQueues:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.loads(handle.read())
        except (OSError, ValueError):
            return SecureQueues()
        offline = data.get("offline") if data.get("offline") in OFFLINE_MODES else "retry"
        return SecureQueues({str(q).lower() for q in data.get("queues", []) if isinstance(q, str)}, offline)

    def save(self, secure: SecureQueues) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = os.path.splitext(self.path)[0] + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"queues": sorted(secure.queues), "offline": secure.offline}))
        os.replace(tmp, self.path)

    def learn(self, queue: str, secure: bool) -> None:
        """What the server's decision says about `queue` (written only when it changes)."""
        current = self.load()
        if current.is_secure(queue) == secure:
            return
        if secure:
            current.queues.add(queue.lower())
        else:
            current.queues.discard(queue.lower())
        self.save(current)

    def name(self, queues: list[str], offline: str | None = None) -> SecureQueues:
        """Install: these queues are secure (added to what is known), `offline` the admin's choice."""
        current = self.load()
        current.queues |= {q.lower() for q in queues}
        if offline is not None:
            if offline not in OFFLINE_MODES:
                raise ValueError(f"SecureOffline must be one of {', '.join(OFFLINE_MODES)}, not {offline!r}")
            current.offline = offline
        self.save(current)
        return current


def create_release_queues(cups, queues: dict[str, str], say) -> dict[str, str]:
    """Beside each secure queue (name -> its real device URI), a raw, unshared release queue whose
    device URI is the real printer; returns release queue -> URI. `cups` is agent.install.CupsAdmin."""
    created = {}
    for queue, real_uri in queues.items():
        name = release_queue_name(queue)
        cups._run("lpadmin", "-p", name, "-E", "-v", real_uri, "-m", "raw", "-o", "printer-is-shared=false",
                  "-D", f"PageLedger release queue of {queue}")
        created[name] = real_uri
        say(f"release queue {name}: raw, not shared, -> {real_uri}")
    return created


def remove_release_queues(cups, names: list[str], say) -> None:
    for name in names:
        try:
            cups._run("lpadmin", "-x", name)
            say(f"release queue {name}: removed")
        except Exception as exc:  # noqa: BLE001 - an admin may have removed it already
            say(f"release queue {name}: not removed ({exc})")
