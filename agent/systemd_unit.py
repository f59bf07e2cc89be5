"""The release service as a systemd unit on a separate print server (``install --release-service``).

The unit runs the installed launcher's ``release-service`` with the install's state dir (where
it reads the ServicesUrl and agent token and keeps its journal), after cupsd and the network.
systemd is told only when it is running here (``/run/systemd/system``, as sd_booted() checks)
and ``systemctl`` exists; otherwise, in a container or a chroot, the admin is given the exact
commands to run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

RELEASE_UNIT = "pageledger-release.service"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
SYSTEMD_RUNNING = Path("/run/systemd/system")


def release_unit_text(launcher: Path, state_dir: Path, cups_server: str | None = None) -> str:
    command = [str(launcher), "release-service", "--state-dir", str(state_dir)]
    if cups_server:
        command += ["--cups-server", cups_server]
    return ("# Written by 'pageledger-agent install --release-service'; removed by 'pageledger-agent uninstall'.\n"
            "[Unit]\n"
            "Description=PageLedger release service (prints released jobs through this print server's CUPS)\n"
            "After=cups.service network-online.target\n"
            "Wants=network-online.target\n"
            "\n"
            "[Service]\n"
            f"ExecStart={' '.join(_quoted(part) for part in command)}\n"
            "Restart=on-failure\n"
            "RestartSec=5\n"
            "\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n")


def _quoted(word: str) -> str:
    """One ExecStart word: systemd splits on white space and reads C-style escapes in quotes."""
    if word and not any(c.isspace() or c in "\"'\\;$%" for c in word):
        return word
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    return f'"{escaped}"'


class Systemd:
    """Where units go (``unit_dir``) and whether this host's systemd is to be told."""

    def __init__(self, unit_dir: Path = DEFAULT_UNIT_DIR, running_marker: Path = SYSTEMD_RUNNING,
                 run: Callable[[list[str]], None] | None = None) -> None:
        self.unit_dir = Path(unit_dir)
        self.running_marker = running_marker
        self._run = run or _systemctl

    def is_running(self) -> bool:
        return self.running_marker.is_dir() and shutil.which("systemctl") is not None

    def install_release_unit(self, launcher: Path, state_dir: Path, cups_server: str | None,
                             say: Callable[[str], None], *, upgrade: bool = False) -> Path:
        """Write the unit and start it (or say how); its path, for uninstall. On an upgrade the
        running service is restarted, to run the new agent."""
        path = self.unit_dir / RELEASE_UNIT
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(release_unit_text(launcher, state_dir, cups_server))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        say(f"systemd unit written: {path}")
        start = [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", RELEASE_UNIT]]
        if not self.is_running():
            say("systemd is not running here: to start the release service, run "
                + " && ".join(" ".join(c) for c in start))
            return path
        self._run_all(start + ([["systemctl", "try-restart", RELEASE_UNIT]] if upgrade else []), say)
        return path

    def remove_unit(self, path: Path, say: Callable[[str], None]) -> None:
        running = self.is_running()
        if running:
            self._run_all([["systemctl", "disable", "--now", path.name]], say)
        else:
            enabled = path.parent / "multi-user.target.wants" / path.name  # what enable made, undone offline
            if enabled.is_symlink():
                enabled.unlink()
        if path.exists():
            path.unlink()
            say(f"systemd unit removed: {path}")
        if running:
            self._run_all([["systemctl", "daemon-reload"]], say)

    def _run_all(self, commands: list[list[str]], say: Callable[[str], None]) -> None:
        for command in commands:
            try:
                self._run(command)
            except RuntimeError as exc:
                say(f"warning: {exc}")


def _systemctl(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {(result.stderr or result.stdout).strip()}")
