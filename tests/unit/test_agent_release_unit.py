"""``pageledger-agent install --release-service`` writes the release service's systemd unit (and
starts it only where a systemd runs); ``uninstall`` removes it; ``pageledger-agent release-service``
runs agent.release_service. No real systemd: its unit directory and its 'running' marker are
tmp_path's, and systemctl is a recorder."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import agent.systemd_unit as systemd_unit
from agent.cli import main
from agent.config import AgentConfig
from agent.install import CupsAdmin, InstallRecord, install, uninstall
from agent.systemd_unit import RELEASE_UNIT, Systemd


class MemoryCups(CupsAdmin):
    def __init__(self) -> None:
        super().__init__(server="printsrv-2:631")
        self.uris = {"finance": "ipp://printer/ipp/print"}

    def device_uris(self) -> dict[str, str]:
        return dict(self.uris)

    def set_device_uri(self, queue: str, uri: str) -> None:
        self.uris[queue] = uri


def unit_lines(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))


@pytest.fixture
def installed(tmp_path):
    server_bin = tmp_path / "serverbin"
    (server_bin / "backend").mkdir(parents=True)
    config = AgentConfig(state_dir=tmp_path / "state").with_properties({
        "ServicesUrl": "http://127.0.0.1:9", "AgentToken": "t", "InstallDir": str(tmp_path / "opt"),
        "SuppressShortcuts": "1", "ServerTimeout": "0.5"})
    return config, server_bin


def test_install_writes_the_unit_and_says_how_to_start_it_where_no_systemd_runs(tmp_path, installed):
    config, server_bin = installed
    units, said = tmp_path / "units", []
    systemd = Systemd(units, running_marker=tmp_path / "no-systemd",
                      run=lambda command: pytest.fail(f"systemctl run without systemd: {command}"))
    record = install(config, server_bin=server_bin, cups=MemoryCups(), say=said.append, release_service=systemd)

    unit = units / RELEASE_UNIT
    assert record.release_unit == str(unit) == InstallRecord.load(config.state_dir).release_unit
    lines = unit_lines(unit)
    assert lines["ExecStart"] == (f"{tmp_path.resolve() / 'opt' / 'pageledger-agent'} release-service "
                                  f"--state-dir {config.state_dir} --cups-server printsrv-2:631")
    assert lines["Restart"] == "on-failure"
    assert lines["After"] == "cups.service network-online.target" and lines["WantedBy"] == "multi-user.target"
    assert any("systemctl daemon-reload && systemctl enable --now pageledger-release.service" in line for line in said)

    # The unit runs the installed launcher's release-service (its own environment, not this checkout).
    launcher = lines["ExecStart"].split()[0]
    shown = subprocess.run([launcher, "release-service", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--cups-server" in shown.stdout, shown.stderr

    install(config, server_bin=server_bin, cups=MemoryCups(), say=said.append)  # a repair keeps it
    assert InstallRecord.load(config.state_dir).release_unit == str(unit)
    (units / "multi-user.target.wants").mkdir()
    (units / "multi-user.target.wants" / RELEASE_UNIT).symlink_to(unit)  # as the admin's 'enable' made it
    uninstall(config.state_dir, cups=MemoryCups(), say=said.append, systemd=systemd)
    assert not unit.exists() and not (units / "multi-user.target.wants" / RELEASE_UNIT).is_symlink()


def test_where_systemd_runs_install_enables_and_starts_the_unit_and_uninstall_stops_it(tmp_path, installed,
                                                                                       monkeypatch):
    config, server_bin = installed
    (tmp_path / "run-systemd").mkdir()
    monkeypatch.setattr(systemd_unit.shutil, "which", lambda name: f"/usr/bin/{name}")
    ran: list[list[str]] = []
    systemd = Systemd(tmp_path / "units", running_marker=tmp_path / "run-systemd", run=ran.append)
    install(config, server_bin=server_bin, cups=MemoryCups(), say=lambda line: None, release_service=systemd)
    assert ran == [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", RELEASE_UNIT]]
    ran.clear()
    uninstall(config.state_dir, cups=MemoryCups(), say=lambda line: None, systemd=systemd)
    assert ran == [["systemctl", "disable", "--now", RELEASE_UNIT], ["systemctl", "daemon-reload"]]
    assert not (tmp_path / "units" / RELEASE_UNIT).exists()


def test_a_state_dir_with_a_space_is_one_execstart_word(tmp_path):
    text = systemd_unit.release_unit_text(Path("/opt/pageledger-agent/pageledger-agent"), Path("/srv/print state"))
    assert 'ExecStart=/opt/pageledger-agent/pageledger-agent release-service --state-dir "/srv/print state"' in text


def test_the_release_service_subcommand_shows_help_and_runs_the_release_service(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as done:
        main(["release-service", "--help"])
    assert done.value.code == 0
    assert "--cups-server" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["install", "--help"])
    assert "--release-service" in capsys.readouterr().out

    import agent.release_service

    ran = []
    monkeypatch.setattr(agent.release_service, "main", lambda argv: ran.append(argv) or 0)
    assert main(["release-service", "--state-dir", str(tmp_path), "--cups-server", "localhost:8631"]) == 0
    assert ran == [["--cups-server", "localhost:8631", "--services-url", "", "--state-dir", str(tmp_path)]]
