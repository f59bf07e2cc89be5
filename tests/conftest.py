"""Shared fixtures: real stores (SQLite file, PostgreSQL) and a live server in a subprocess.

PostgreSQL is a real server at 127.0.0.1:5432 (the test command starts it when it is not
running). A missing PostgreSQL fails the tests that need it; nothing is skipped.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("PAGELEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = ("sqlite", "postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                            isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = _pg_admin()
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}. "
                    "The test command (./run.sh test) starts it; start it or set PAGELEDGER_TEST_PG.")
    yield engine
    engine.dispose()


def new_database_url(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of the given kind, removed after the test."""
    if store == "sqlite":
        return f"sqlite:///{tmp_path / 'pageledger.db'}"
    admin = request.getfixturevalue("pg_admin")
    name = f"pl_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    request.addfinalizer(drop)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return new_database_url(request.param, tmp_path, request)


@pytest.fixture
def settings(database_url: str, tmp_path: Path):
    from pageledger.settings import Settings

    return Settings.load(environ={}, database_url=database_url, data_dir=tmp_path / "var")


@pytest.fixture
def runtime(settings):
    from pageledger.bootstrap import build_runtime

    rt = build_runtime(settings)
    yield rt
    rt.close()


@dataclass
class LiveServer:
    """`pageledger up` (or another server command) in a subprocess, on a free port, with its own
    data directory."""

    workdir: Path
    port: int
    env: dict[str, str]
    command: tuple[str, ...] = ("up",)
    proc: subprocess.Popen | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    setup_code: str = ""  # the setup wizard's one-time code, printed at the first start
    # The first start installs a 5-user trial; tests with many sample users turn on "track
    # unlicensed users" so their jobs are tracked, not denied (licensing tests turn it off).
    track_unlicensed: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        return self.tokens["admin_token"]

    @property
    def agent_token(self) -> str:
        return self.tokens["agent_token"]

    def start(self, timeout: float = 60.0, healthy: bool = True) -> None:
        """Start and wait until /healthz answers 200 (`healthy=False`: until it answers at all,
        for a node whose health depends on another one)."""
        log = open(self.workdir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pageledger.cli", *self.command, "--port", str(self.port)],
            cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        import requests

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: "
                                   + (self.workdir / "server.log").read_text()[-3000:])
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200 or not healthy:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not become healthy: " + (self.workdir / "server.log").read_text()[-3000:])
        code_file = self.workdir / "var" / "setup-code"
        self.setup_code = code_file.read_text().strip() if code_file.exists() else ""
        tokens_file = self.workdir / "var" / "first-tokens.json"
        if not tokens_file.exists():  # `serve` issues none: the test hands it another node's tokens
            return
        self.tokens = json.loads(tokens_file.read_text())
        if self.track_unlicensed:
            r = requests.put(self.url + "/api/v1/licence/settings", json={"track_unlicensed": True},
                             headers=self.headers(self.admin_token), timeout=10)
            r.raise_for_status()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL the whole server (gunicorn master and its worker), as a crash would."""
        if self.proc and self.proc.poll() is None:
            children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
            for pid in children:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait()

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def make_live_server(tmp_path: Path, database_url: str | None = None, *, name: str = "server",
                     command: tuple[str, ...] = ("up",), **env: str) -> LiveServer:
    """A server not yet started. `name` is its working directory under tmp_path (two servers
    in one test are two nodes); `command` the CLI command that runs it."""
    workdir = tmp_path / name
    workdir.mkdir(exist_ok=True)
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    server_env["PYTHONPATH"] = str(ROOT) + os.pathsep + server_env.get("PYTHONPATH", "")
    server_env["PAGELEDGER_PROJECTION_POLL_SECONDS"] = "0.02"
    if database_url:
        server_env["PAGELEDGER_DATABASE_URL"] = database_url
    server_env.update(env)
    return LiveServer(workdir=workdir, port=free_port(), env=server_env, command=command)


def started_https_server(tmp_path: Path) -> LiveServer:
    """`pageledger up` with an HTTPS port beside its HTTP one (browsers are sent there), started;
    its port is `https_port`."""
    https_port = free_port()
    server = make_live_server(tmp_path, command=("up", "--https-port", str(https_port)))
    server.https_port = https_port
    server.start()
    return server


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children, ...)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    found = {int(p) for p in out}
    for child in list(found):
        found |= descendants(child)
    return found


@pytest.fixture
def pg_database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL database. Request it before `start_server`, so that the servers are
    gone before it is dropped."""
    return new_database_url("postgresql", tmp_path, request)


@pytest.fixture
def start_server() -> Iterator:
    """`start_server(server, **start_kwargs)` starts a LiveServer; at the end of the test each
    one is stopped and whatever is left of its processes killed (tests stop or kill some)."""
    started: list[LiveServer] = []

    def start(server: LiveServer, **kwargs) -> LiveServer:
        started.append(server)
        server.start(**kwargs)
        return server

    yield start
    while started:
        server = started.pop()
        if server.proc is None:
            continue
        pids = {server.proc.pid, *descendants(server.proc.pid)}
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)  # a test may have stopped one
            except ProcessLookupError:
                pass
        server.stop()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The real server on the embedded default (SQLite), as `pageledger up` runs it."""
    server = make_live_server(tmp_path)
    server.start()
    yield server
    server.stop()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


# Files whose tests measure time against a bound (a latency, a fuzz budget, a progress bar seen
# while a run is still going): the whole suite (./run.sh test with no arguments) runs them on
# their own after the rest, which runs in two processes, so that the other process's work does
# not count against their bound.
TIMED_FILES = frozenset({"test_slow_clients.py", "test_openapi_fuzz.py", "test_healthz.py",
                         "test_console_audit_verify.py", "test_console_report_schedules.py"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in TIMED_FILES:
            item.add_marker(pytest.mark.timed)
