"""Installing the agent on a CUPS print server: the backend, its configuration, wrapped queues.

The agent is installed into its own place, ``InstallDir`` (default /opt/pageledger-agent):
a virtual environment of its own (``InstallDir/venv``, made from the base interpreter, no
pip) holding a copy of the ``agent`` package and of ``pypdf`` (its one dependency, for PDF
colour), compiled. The backend and the ``pageledger-agent`` launcher refer only to that
place: the checkout or wheel that ran ``install`` can be deleted or moved. The backend runs
its interpreter with ``-IS`` (isolated, no site) (no site, no .pth files of other packages: a job pays only for
what it imports) and the environment's site-packages on its path.

``install`` writes ``<ServerBin>/backend/pageledger`` (mode 0700, owned by root: cupsd runs
it as root, so its state dir can stay root-only; it hands the job to the real backend as
cupsd would, as ``lp`` for world-executable backends), the configuration and install record
in the state dir, and rewrites each chosen queue's device URI to ``pageledger:<old uri>``
with ``lpadmin``. Running it again with the same version repairs (rewrites the files, wraps
what is not wrapped), with a newer version upgrades, and with an older version refuses.
``uninstall`` gives the queues their original URIs back and removes the backend; the
outbox and configuration stay unless purged, so no unposted job is lost.

With ``--release-service`` the install also writes the release service's systemd unit
(``agent.systemd_unit``), for a print server apart from the PageLedger server; uninstall
stops and removes it.
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
from agent.config import DEFAULT_SERVER_BIN, AgentConfig, ConfigError
from agent.outbox import Outbox
from agent.policy_cache import PolicyStore
from agent.secure_queues import (RELEASE_SUFFIX, SecureQueueStore, create_release_queues, release_queue_name,
                                  remove_release_queues)
from agent.server import ServerError, ServerRefusedToken, ServicesClient
from agent.systemd_unit import Systemd

BACKEND_NAME = "pageledger"
RECORD_FILE = "installed.json"
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
    release_unit: str = ""  # the release service's systemd unit (install --release-service)

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


STATE_LINE = "# state dir: "
VENV = "venv"


def _running_libs() -> list[str]:
    """Where the running agent and its pypdf are (for a backend run from a checkout: tests)."""
    import importlib.util

    libs = [str(Path(agent.__file__).resolve().parent.parent)]
    spec = importlib.util.find_spec("pypdf")
    if spec and spec.origin:
        pypdf_lib = str(Path(spec.origin).resolve().parent.parent)
        if pypdf_lib not in libs:
            libs.append(pypdf_lib)
    return libs


def _path_lines(lib_dir: str | Path | None) -> str:
    libs = [str(lib_dir)] if lib_dir is not None else _running_libs()
    return "".join(f"sys.path.insert({i}, {lib!r})\n" for i, lib in enumerate(libs))


def backend_script(python: str, state_dir: Path, lib_dir: str | Path | None = None) -> str:
    """The CUPS backend: ``lib_dir`` is where its ``agent`` package is (InstallDir's
    site-packages; the running agent's own directory when None, as for tests and benchmarks)."""
    return (f"#!{python} -IS\n"
            f"# PageLedger agent {agent.__version__}: CUPS backend wrapper, written by 'pageledger-agent install'.\n"
            f"{STATE_LINE}{state_dir}\n"
            "import sys\n"
            f"{_path_lines(lib_dir)}"
            "from agent.backend import main\n"
            f"sys.exit(main(sys.argv, state_dir={str(state_dir)!r}))\n")


def launcher_script(python: str, state_dir: Path, lib_dir: str | Path | None = None) -> str:
    return (f"#!{python} -IS\n"
            f"{STATE_LINE}{state_dir}\n"
            "import os, sys\n"
            f"{_path_lines(lib_dir)}"
            f"os.environ.setdefault('PAGELEDGER_AGENT_STATE_DIR', {str(state_dir)!r})\n"
            "from agent.cli import main\n"
            "sys.exit(main())\n")


def state_dir_of_backend(backend: Path) -> Path | None:
    """The state dir an installed backend was written for (its ``# state dir:`` line)."""
    try:
        with open(backend, encoding="utf-8", errors="replace") as handle:
            for _ in range(5):
                line = handle.readline()
                if line.startswith(STATE_LINE):
                    return Path(line[len(STATE_LINE):].strip())
    except OSError:
        return None
    return None


def base_interpreter() -> str:
    """The interpreter the running one was made from (a virtual environment's base)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def install_files(install_dir: Path, say: Callable[[str], None] = print) -> tuple[str, Path]:
    """Make ``install_dir``'s own environment with this agent and pypdf in it; (its python, its
    site-packages). Done in a fresh directory beside the old one, then swapped in, so that a
    failure leaves the installed agent as it was."""
    import compileall
    import venv

    install_dir = install_dir.resolve()
    install_dir.mkdir(parents=True, exist_ok=True)
    target = install_dir / VENV
    fresh = install_dir / f".{VENV}.new"
    if fresh.exists():
        shutil.rmtree(fresh)
    # symlinks: the environment's python is the system one, not a copy that would go stale
    # when the system's is upgraded.
    builder = venv.EnvBuilder(with_pip=False, symlinks=True, clear=True)
    builder.create(fresh)
    site_packages = _site_packages(fresh)
    sources = [Path(agent.__file__).resolve().parent]
    try:
        import pypdf

        sources.append(Path(pypdf.__file__).resolve().parent)
    except ImportError:
        say("warning: pypdf is not installed here: PDF colour is then told by Ghostscript alone")
    for source in sources:
        shutil.copytree(source, site_packages / source.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(str(site_packages), quiet=1, workers=1)
    old = install_dir / f".{VENV}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    if old.exists():
        shutil.rmtree(old)
    # The paths inside pyvenv.cfg and bin/ name the final place only once it is there.
    (target / "pyvenv.cfg").write_text((target / "pyvenv.cfg").read_text().replace(str(fresh), str(target)))
    return str(target / "bin" / "python"), _site_packages(target)


def _site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python*/site-packages"))
    if not found:
        raise InstallError(f"no site-packages in {env}")
    return found[0]


def install(config: AgentConfig, *, server_bin: Path = DEFAULT_SERVER_BIN, cups: CupsAdmin | None = None,
            queues: list[str] | None = None,
            bin_dir: Path = Path("/usr/local/bin"), say: Callable[[str], None] = print,
            secure_queues: list[str] | None = None, secure_offline: str | None = None,
            release_service: Systemd | None = None) -> InstallRecord:
    """Install (or repair, or upgrade) the agent; with `release_service`, also the release
    service as a systemd unit there (a unit installed before is kept on a later install)."""
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
    own_python, lib_dir = install_files(config.install_dir, say)
    say(f"agent {agent.__version__} installed in {config.install_dir}")
    _write_executable(backend_path, backend_script(own_python, config.state_dir, lib_dir), 0o700)
    say(f"backend installed: {backend_path}")

    launcher_path = config.install_dir.resolve() / "pageledger-agent"
    _write_executable(launcher_path, launcher_script(own_python, config.state_dir, lib_dir), 0o755)
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
                           dict(previous.release_queues) if previous else {},
                           previous.release_unit if previous else "")
    current = cups.device_uris()
    chosen = list(current) if queues is None else queues
    chosen = _without_release_queues(chosen, record, explicit=queues is not None)
    unknown = [q for q in chosen if q not in current]
    if unknown:
        record.save(config.state_dir)
        raise InstallError(f"no such queue: {', '.join(unknown)} (queues: {', '.join(current) or 'none'})")
    wrapped_now: list[str] = []
    attempted: str | None = None
    try:
        for queue in chosen:
            uri = current[queue]
            if uri.startswith(PREFIX):
                record.queues.setdefault(queue, uri[len(PREFIX):])
                say(f"queue {queue}: already wrapped")
                continue
            # Recorded before the queue is changed: an install killed between the two leaves a
            # record that uninstall (or the next install) can still undo.
            record.queues[queue] = uri
            record.save(config.state_dir)
            attempted = queue
            cups.set_device_uri(queue, PREFIX + uri)
            wrapped_now.append(queue)
            say(f"queue {queue}: {uri} -> {PREFIX}{uri}")
    except BaseException:
        # Interrupted (an lpadmin failure, Ctrl-C): the queues wrapped by this run get their
        # URIs back, so that a failed install leaves the queues as they were.
        kept_before = previous.queues if previous is not None else {}
        if attempted is not None and attempted not in wrapped_now and attempted not in kept_before:
            record.queues.pop(attempted, None)  # recorded, but lpadmin did not change it
        for queue in reversed(wrapped_now):
            try:
                cups.set_device_uri(queue, current[queue])
                say(f"queue {queue}: restored to {current[queue]} (install interrupted)")
            except InstallError as err:
                say(f"warning: queue {queue} not restored ({err})")
            else:
                if previous is None or queue not in previous.queues:
                    record.queues.pop(queue, None)
        record.save(config.state_dir)
        raise
    if secure_queues is not None or secure_offline is not None:
        _install_secure_queues(config.state_dir, cups, record, secure_queues or [], secure_offline, say)
    if release_service is not None:
        record.release_unit = str(release_service.install_release_unit(
            launcher_path, config.state_dir, cups.server, say, upgrade=bool(record.release_unit)))
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
              say: Callable[[str], None] = print, systemd: Systemd | None = None) -> None:
    cups = cups or CupsAdmin()
    record = InstallRecord.load(state_dir)
    if record is None:
        # Idempotent: run again after it succeeded, there is nothing left to undo.
        say(f"no agent installed with state in {state_dir} ({RECORD_FILE} missing): nothing to undo")
        return
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
    if record.release_unit:
        (systemd or Systemd()).remove_unit(Path(record.release_unit), say)
    if record.release_queues:
        remove_release_queues(cups, list(record.release_queues), say)
    for path in (record.backend_path, record.launcher_path, record.shortcut_path):
        if path and (os.path.islink(path) or os.path.exists(path)):
            os.unlink(path)
    if record.launcher_path:
        own_env = Path(record.launcher_path).parent / VENV
        if (own_env / "pyvenv.cfg").exists():
            shutil.rmtree(own_env)
            say(f"agent removed from {own_env.parent}")
    (state_dir / RECORD_FILE).unlink()
    if purge:
        shutil.rmtree(state_dir)
        say(f"state removed: {state_dir}")
    elif waiting:
        say(f"warning: {waiting} jobs not yet posted stay in {state_dir}; 'pageledger-agent flush' posts them")
