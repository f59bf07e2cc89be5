"""The server's processes stop with it, however it stops."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.conftest import make_live_server, wait_until


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    found = {int(p) for p in out}
    for child in list(found):
        found |= _descendants(child)
    return found


_started: list[set[int]] = []


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    yield
    while _started:
        for pid in _started.pop():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _kill_all_at_the_end(server) -> None:
    _started.append({server.proc.pid, *_descendants(server.proc.pid)})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = open(f"/proc/{pid}/stat").read().split()[2] if os.path.exists(f"/proc/{pid}/stat") else "X"
    return state != "Z"


def test_sigterm_stops_the_workers_and_the_projection_process(tmp_path):
    server = make_live_server(tmp_path)
    server.start()
    _kill_all_at_the_end(server)
    children = _descendants(server.proc.pid)
    assert len(children) >= 3  # two web workers and the projection process
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    wait_until(lambda: not any(_alive(p) for p in children), timeout=15)


def test_the_projection_process_stops_when_the_server_is_killed_outright(tmp_path):
    server = make_live_server(tmp_path)
    server.start()
    _kill_all_at_the_end(server)
    children = _descendants(server.proc.pid)
    pid_file = server.workdir / "var" / "projections.pid"
    projections = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip()))
    assert projections in children
    for pid in (server.proc.pid, *children):
        if pid != projections:
            os.kill(pid, signal.SIGKILL)
    server.proc.wait()
    # Orphaned now: it notices within seconds and exits (before the fix it ran on for hours).
    wait_until(lambda: not _alive(projections), timeout=20)
