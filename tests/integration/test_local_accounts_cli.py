"""`pageledger users add|passwd|role|remove|sync` on a local-accounts server, as an admin runs them:
real processes on a real SQLite file; logins checked against the same database afterwards."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(tmp_path, *args, stdin: str | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    environ.update({"PAGELEDGER_DATA_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "pageledger.cli", *args], cwd=tmp_path, env=environ,
                          input=stdin, capture_output=True, text=True, timeout=120)


def log_in(tmp_path, login, password):
    """A login on the web site of this server, judged by the same handlers the server uses."""
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings

    with build_runtime(Settings.load(environ={"PAGELEDGER_DATA_DIR": str(tmp_path / "var")})) as runtime:
        return runtime.log_in(login=login, password=password, remote_addr="127.0.0.1")


@pytest.fixture
def server_dir(tmp_path):
    created = run(tmp_path, "db", "create")
    assert created.returncode == 0, created.stderr
    return tmp_path


def users_listed(tmp_path) -> dict[str, list[str]]:
    listed = run(tmp_path, "users", "list")
    assert listed.returncode == 0, listed.stderr
    return {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines() if line.strip()}


def test_a_sync_of_a_local_accounts_server_keeps_every_account_and_says_so(server_dir):
    added = run(server_dir, "users", "add", "root", "--role", "admin", "--password-stdin", stdin="root-pw-123\n")
    assert added.returncode == 0, added.stderr
    synced = run(server_dir, "users", "sync")
    assert synced.returncode == 0, synced.stderr
    assert "local accounts" in synced.stdout and "nothing to import or deactivate" in synced.stdout
    assert users_listed(server_dir)["root"][:3] == ["local", "admin", "active"]
    assert log_in(server_dir, "root", "root-pw-123").ok


def test_an_admin_adds_re_passwords_re_roles_and_removes_local_accounts(server_dir):
    t = server_dir

    # Bad input names each bad field and writes nothing; a password is never taken from argv.
    short = run(t, "users", "add", "kim", "--role", "user", "--email", "not-an-address", "--password-stdin",
                stdin="short\n")
    assert short.returncode == 2 and "password:" in short.stderr and "email:" in short.stderr
    assert run(t, "users", "add", "kim", "--role", "boss", "--password-stdin", stdin="kim-pw-4567\n").returncode == 2
    assert run(t, "users", "add", "kim", "--role", "user", "--password", "kim-pw-4567").returncode == 2
    no_tty = run(t, "users", "add", "kim", "--role", "user", stdin="kim-pw-4567\n")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    assert users_listed(t) == {}

    assert run(t, "users", "add", "root", "--role", "admin", "--password-stdin", stdin="root-pw-123\n").returncode == 0
    added = run(t, "users", "add", "kim", "--role", "user", "--full-name", "Kim Kay", "--email", "kim@example.org",
                "--password-stdin", stdin="kim-pw-4567\n")
    assert added.returncode == 0, added.stderr
    assert "added local user kim (user)" in added.stdout
    again = run(t, "users", "add", "KIM", "--role", "user", "--password-stdin", stdin="kim-pw-9999\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert users_listed(t)["kim"] == ["local", "user", "active", "Kim", "Kay"]

    changed = run(t, "users", "passwd", "kim", "--password-stdin", stdin="kim-new-pw-1\n")
    assert changed.returncode == 0, changed.stderr
    assert log_in(t, "kim", "kim-pw-4567").outcome == "bad_credentials"
    assert log_in(t, "kim", "kim-new-pw-1").outcome == "no_seat"  # the password is right; no licence here
    assert run(t, "users", "passwd", "kim", "--password-stdin", stdin="short\n").returncode == 2
    assert run(t, "users", "passwd", "nobody", "--password-stdin", stdin="long-enough-1\n").returncode == 1

    # The last active admin is kept: not removed, demoted or deactivated.
    for refused in (run(t, "users", "remove", "root"), run(t, "users", "role", "root", "user")):
        assert refused.returncode == 1 and "root is the last active admin" in refused.stderr
    assert run(t, "users", "role", "kim", "chief").returncode == 2
    promoted = run(t, "users", "role", "kim", "admin")
    assert promoted.returncode == 0 and "kim is now admin" in promoted.stdout
    assert log_in(t, "kim", "kim-new-pw-1").role == "admin"

    # Removed: gone from the list, cannot log in; the login can be added again.
    removed = run(t, "users", "remove", "root")
    assert removed.returncode == 0, removed.stderr
    assert "root" not in users_listed(t)
    assert log_in(t, "root", "root-pw-123").outcome == "bad_credentials"
    gone = run(t, "users", "remove", "root")
    assert gone.returncode == 1 and "no user root" in gone.stderr
    assert run(t, "users", "add", "root", "--role", "auditor", "--password-stdin", stdin="root-pw-456\n").returncode == 0
    assert log_in(t, "root", "root-pw-456").role == "auditor"

    everything = run(t, "users", "list").stdout + run(t, "users", "sync").stdout
    for secret in ("root-pw-123", "root-pw-456", "kim-pw-4567", "kim-new-pw-1"):
        assert secret not in everything + added.stdout + added.stderr + changed.stdout + changed.stderr
