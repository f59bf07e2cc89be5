"""Installing the agent on a CUPS print server: the backend, its configuration, wrapped queues.

``install`` writes ``<ServerBin>/backend/pageledger`` (mode 0700, owned by root: cupsd runs
it as root, so its state dir can stay root-only; it hands the job to the real backend as
cupsd would, as ``lp`` for world-executable backends), the configuration and install record
in the state dir, and rewrites each chosen queue's device URI to ``pageledger:<old uri>``
with ``lpadmin``. Running it again with the same version repairs (rewrites the files, wraps
what is not wrapped), with a newer version upgrades, and with an older version refuses.
``uninstall`` gives the queues their original URIs back and removes the backend; the
outbox and configuration stay unless purged, so no unposted job is lost.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import agent
from agent.config import AgentConfig, ConfigError
from agent.outbox import Outbox
from agent.policy_cache import PolicyStore
from agent.secure_queues import (RELEASE_SUFFIX, SecureQueueStore, create_release_queues, release_queue_name,
                                  remove_release_queues)
from agent.server import ServerError, ServerRefusedToken, ServicesClient

BACKEND_NAME = "pageledger"
RECORD_FILE = "installed.json"
DEFAULT_SERVER_BIN = Path("/usr/lib/cups")
PREFIX = BACKEND_NAME + ":"


class InstallError(Exception):
    """Install or uninstall cannot go on; the message says why and what to do."""


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@dataclass
class CupsAdmin:
    """``lpstat``/``lpadmin`` against one cupsd (``-h host:port`` when not the local default)."""

    server: str | None = None

    def _run(self, *args: str) -> str:
        command = [args[0]] + (["-h", self.server] if self.server else []) + list(args[1:])
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C", "LANG": "C"})
        if result.returncode != 0:
            raise InstallError(f"{' '.join(command)} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def device_uris(self) -> dict[str, str]:
        try:
            output = self._run("lpstat", "-v")
        except InstallError as err:
            if "No destinations added" in str(err):
                return {}
            raise
        uris = {}
        for line in output.splitlines():
            if line.startswith("device for ") and ": " in line:
                name, uri = line[len("device for "):].split(": ", 1)
                uris[name] = uri.strip()
        return uris

    def set_device_uri(self, queue: str, uri: str) -> None:
        self._run("lpadmin", "-p", queue, "-v", uri)


@dataclass
class InstallRecord:
    """What an install did (version, files, each wrapped queue's original URI): what uninstall undoes."""

    version: str
    server_bin: str
    backend_path: str
    launcher_path: str = ""
    shortcut_path: str = ""
    queues: dict[str, str] = field(default_factory=dict)  # queue -> original device URI
    release_queues: dict[str, str] = field(default_factory=dict)  # release queue -> the real printer's URI

    @classmethod
    def load(cls, state_dir: Path) -> "InstallRecord | None":
        path = state_dir / RECORD_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(**data)

    def save(self, state_dir: Path) -> None:
        path = state_dir / RECORD_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2))
        os.replace(tmp, path)


def _write_executable(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def backend_script(python: str, state_dir: Path) -> str:
    agent_root = str(Path(agent.__file__).resolve().parent.parent)
    return (f"#!{python} -I\n"
            f"# PageLedger agent {agent.__version__}: CUPS backend wrapper, written by 'pageledger-agent install'.\n"
            "import sys\n"
            f"sys.path.insert(0, {agent_root!r})\n"
            "from agent.backend import main\n"
            f"sys.exit(main(sys.argv, state_dir={str(state_dir)!r}))\n")


def launcher_script(python: str, state_dir: Path) -> str:
    agent_root = str(Path(agent.__file__).resolve().parent.parent)
    return (f"#!{python} -I\n"
            "import os, sys\n"
            f"sys.path.insert(0, {agent_root!r})\n"
            f"os.environ.setdefault('PAGELEDGER_AGENT_STATE_DIR', {str(state_dir)!r})\n"
            "from agent.cli import main\n"
            "sys.exit(main())\n")


def install(config: AgentConfig, *, server_bin: Path = DEFAULT_SERVER_BIN, cups: CupsAdmin | None = None,
            queues: list[str] | None = None, python: str = sys.executable,
            bin_dir: Path = Path("/usr/local/bin"), say: Callable[[str], None] = print,
            secure_queues: list[str] | None = None, secure_offline: str | None = None) -> InstallRecord:
    cups = cups or CupsAdmin()
    if not config.services_url:
        raise ConfigError("ServicesUrl is required (in package.ini [Properties] or SERVICESURL=...)")
    if not config.agent_token:
        raise ConfigError("AgentToken is required (AGENTTOKEN=... from 'pageledger tokens issue --role agent')")
    previous = InstallRecord.load(config.state_dir)
    if previous is not None:
        installed, ours = version_tuple(previous.version), version_tuple(agent.__version__)
        if installed > ours:
            raise InstallError(f"agent {previous.version} is installed, newer than this {agent.__version__}: "
                               "refusing to downgrade (run 'pageledger-agent uninstall' first to go back)")
        say(f"{'repairing' if installed == ours else 'upgrading'} agent {previous.version}"
            f"{'' if installed == ours else ' to ' + agent.__version__}")

    client = ServicesClient(config.services_url, config.agent_token, config.server_timeout)
    policies = PolicyStore(config.state_dir)
    try:
        policy = client.get_policy()
    except ServerRefusedToken as err:
        raise InstallError(f"the server refused the agent token ({err}): issue one with "
                           "'pageledger tokens issue --role agent' and pass AGENTTOKEN=...") from None
    except ServerError as err:
        policy = None
        say(f"warning: server not reachable now ({err}); "
            f"{'jobs print and are posted later' if config.ignore_disconnected else 'jobs are refused until it is reached once'}")

    config.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.state_dir, 0o700)
    config.save()
    if policy is not None:
        policies.record_connection(policy["offline"])
        say(f"server reached: offline policy '{policy['offline']}'")
    Outbox(config.state_dir / "outbox.sqlite3").close()

    backend_path = server_bin / "backend" / BACKEND_NAME
    if not (server_bin / "backend").is_dir():
        raise InstallError(f"{server_bin / 'backend'} is not a directory: is CUPS installed (ServerBin)?")
    _write_executable(backend_path, backend_script(python, config.state_dir), 0o700)
    say(f"backend installed: {backend_path}")

    launcher_path = config.install_dir / "pageledger-agent"
    _write_executable(launcher_path, launcher_script(python, config.state_dir), 0o755)
    shortcut_path = ""
    if not config.suppress_shortcuts:
        shortcut = bin_dir / "pageledger-agent"
        bin_dir.mkdir(parents=True, exist_ok=True)
        if shortcut.is_symlink() or not shortcut.exists():
            if shortcut.is_symlink():
                shortcut.unlink()
            shortcut.symlink_to(launcher_path)
            shortcut_path = str(shortcut)

    record = InstallRecord(agent.__version__, str(server_bin), str(backend_path), str(launcher_path),
                           shortcut_path, dict(previous.queues) if previous else {},
                           dict(previous.release_queues) if previous else {})
    current = cups.device_uris()
    chosen = list(current) if queues is None else queues
    chosen = _without_release_queues(chosen, record, explicit=queues is not None)
    unknown = [q for q in chosen if q not in current]
    if unknown:
        record.save(config.state_dir)
        raise InstallError(f"no such queue: {', '.join(unknown)} (queues: {', '.join(current) or 'none'})")
    for queue in chosen:
        uri = current[queue]
        if uri.startswith(PREFIX):
            record.queues.setdefault(queue, uri[len(PREFIX):])
            say(f"queue {queue}: already wrapped")
            continue
        cups.set_device_uri(queue, PREFIX + uri)
        record.queues[queue] = uri
        say(f"queue {queue}: {uri} -> {PREFIX}{uri}")
    if secure_queues is not None or secure_offline is not None:
        _install_secure_queues(config.state_dir, cups, record, secure_queues or [], secure_offline, say)
    record.save(config.state_dir)
    return record


def _without_release_queues(chosen: list[str], record: InstallRecord, explicit: bool) -> list[str]:
    """Release queues are never wrapped: a released job is accounted when it prints, not again."""
    return [q for q in chosen if q not in record.release_queues and (explicit or not q.endswith(RELEASE_SUFFIX))]


def _install_secure_queues(state_dir: Path, cups: CupsAdmin, record: InstallRecord, secure: list[str],
                           offline: str | None, say: Callable[[str], None]) -> None:
    """Name the secure queues (the backend fails closed on them) and create their release queues."""
    unknown = [q for q in secure if q not in record.queues]
    if unknown:
        record.save(state_dir)
        raise InstallError(f"secure queues must be wrapped queues: {', '.join(unknown)} is not")
    try:
        known = SecureQueueStore(state_dir).name(secure, offline)
    except ValueError as err:
        raise InstallError(str(err)) from None
    say(f"secure queues: {', '.join(sorted(known.queues)) or 'none'}; while the server cannot be reached "
        f"their jobs are {'kept by CUPS and retried' if known.offline == 'retry' else 'refused'}, never printed")
    wanted = {q: record.queues[q] for q in secure if release_queue_name(q) not in record.release_queues}
    record.release_queues.update(create_release_queues(cups, wanted, say))


def _flush_before_leaving(state_dir: Path, say: Callable[[str], None]) -> int:
    """Post what the outbox holds if the server answers; the number of jobs still waiting."""
    from agent.config import load_config
    with Outbox(state_dir / "outbox.sqlite3") as outbox:
        if outbox.count():
            try:
                config = load_config(state_dir)
                client = ServicesClient(config.services_url, config.agent_token, config.server_timeout)
                report = outbox.flush(client, config.batch_size)
                say(f"posted {report.sent} queued jobs")
            except (ConfigError, ServerError) as err:
                say(f"warning: queued jobs not posted ({err})")
        return outbox.count()


def uninstall(state_dir: Path, *, cups: CupsAdmin | None = None, purge: bool = False,
              say: Callable[[str], None] = print) -> None:
    cups = cups or CupsAdmin()
    record = InstallRecord.load(state_dir)
    if record is None:
        raise InstallError(f"no agent installed with state in {state_dir} ({RECORD_FILE} missing)")
    waiting = _flush_before_leaving(state_dir, say)
    if purge and waiting:
        raise InstallError(f"{waiting} jobs are not posted yet and --purge would lose them: "
                           "run 'pageledger-agent flush' when the server is back, or uninstall without --purge")
    current = cups.device_uris()
    for queue, uri in current.items():
        if not uri.startswith(PREFIX):
            if queue in record.queues:
                say(f"queue {queue}: no longer wrapped ({uri}), left as it is")
            continue
        original = record.queues.get(queue)
        restored = original if original and uri == PREFIX + original else uri[len(PREFIX):]
        cups.set_device_uri(queue, restored)
        say(f"queue {queue}: {uri} -> {restored}")
    if record.release_queues:
        remove_release_queues(cups, list(record.release_queues), say)
    for path in (record.backend_path, record.launcher_path, record.shortcut_path):
        if path and (os.path.islink(path) or os.path.exists(path)):
            os.unlink(path)
    (state_dir / RECORD_FILE).unlink()
    if purge:
        shutil.rmtree(state_dir)
        say(f"state removed: {state_dir}")
    elif waiting:
        say(f"warning: {waiting} jobs not yet posted stay in {state_dir}; 'pageledger-agent flush' posts them")
