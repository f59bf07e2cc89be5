"""An install interrupted while it wraps queues leaves every queue as it was; run again, it
finishes the job (idempotent)."""
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.install import CupsAdmin, InstallError, InstallRecord, install, uninstall


class InterruptedCups(CupsAdmin):
    """cupsd's queues in memory; ``lpadmin`` fails on the queue named ``fail_on`` (once)."""

    def __init__(self, uris: dict[str, str], fail_on: str | None = None):
        super().__init__()
        self.uris = dict(uris)
        self.fail_on = fail_on

    def device_uris(self) -> dict[str, str]:
        return dict(self.uris)

    def set_device_uri(self, queue: str, uri: str) -> None:
        if queue == self.fail_on:
            self.fail_on = None
            raise InstallError(f"lpadmin -p {queue} failed: Unable to connect to server")
        self.uris[queue] = uri


def test_an_install_interrupted_while_wrapping_queues_leaves_them_as_they_were(tmp_path):
    server_bin = tmp_path / "serverbin"
    (server_bin / "backend").mkdir(parents=True)
    config = AgentConfig(state_dir=tmp_path / "state").with_properties({
        "ServicesUrl": "http://127.0.0.1:9", "AgentToken": "t", "InstallDir": str(tmp_path / "opt"),
        "SuppressShortcuts": "1", "ServerTimeout": "0.5"})
    original = {"a": "ipp://printer-a/ipp/print", "b": "socket://printer-b:9100", "c": "ipp://printer-c/ipp/print"}
    cups = InterruptedCups(original, fail_on="c")
    with pytest.raises(InstallError, match="lpadmin -p c failed"):
        install(config, server_bin=server_bin, cups=cups, say=lambda line: None)
    assert cups.uris == original  # a and b were wrapped, then given their URIs back
    assert InstallRecord.load(config.state_dir).queues == {}
    record = install(config, server_bin=server_bin, cups=cups, say=lambda line: None)  # again: it finishes
    assert cups.uris == {q: "pageledger:" + uri for q, uri in original.items()}
    assert record.queues == original
    uninstall(config.state_dir, cups=cups, say=lambda line: None)
    assert cups.uris == original and not (tmp_path / "opt" / "venv").exists()
    uninstall(config.state_dir, cups=cups, say=lambda line: None)  # idempotent: nothing left to undo
