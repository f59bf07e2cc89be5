"""The `pageledger` command as an admin uses it: real processes, real stores."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT, new_database_url


def pageledger(*args: str, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pageledger.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli_env(tmp_path, request):
    import os

    url = new_database_url("sqlite", tmp_path, request)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env.update(PYTHONPATH=str(ROOT), PAGELEDGER_DATABASE_URL=url)
    return env


def test_db_create_refuses_to_overwrite_without_the_flag(cli_env, tmp_path):
    assert pageledger("db", "create", env=cli_env, cwd=tmp_path).returncode == 0
    again = pageledger("db", "create", env=cli_env, cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert pageledger("db", "create", "--overwrite", env=cli_env, cwd=tmp_path).returncode == 0
    upgraded = pageledger("db", "upgrade", env=cli_env, cwd=tmp_path)
    assert upgraded.returncode == 0 and "at revision 0002_identity" in upgraded.stdout  # the head


def test_db_create_on_postgresql_makes_the_named_database(tmp_path, request, pg_admin):
    import os

    import sqlalchemy as sa

    name = "pl_cli_" + os.urandom(4).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env.update(PYTHONPATH=str(ROOT), PAGELEDGER_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres")
    request.addfinalizer(lambda: pg_admin.connect().execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))
    result = pageledger("db", "create", "--name", name, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with pg_admin.connect() as conn:
        assert conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar() == 1
    bad = pageledger("db", "create", "--name", "x; DROP DATABASE postgres", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "letters, digits" in bad.stderr


def test_tokens_issue_list_revoke_and_secrets_are_shown_once(cli_env, tmp_path):
    issued = pageledger("tokens", "issue", "--role", "agent", "--name", "printsrv1", env=cli_env, cwd=tmp_path)
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)
    listed = pageledger("tokens", "list", env=cli_env, cwd=tmp_path)
    assert token["token_id"] in listed.stdout and "active" in listed.stdout
    assert token["token"] not in listed.stdout + listed.stderr + issued.stderr  # never logged
    assert pageledger("tokens", "revoke", token["token_id"], env=cli_env, cwd=tmp_path).returncode == 0
    assert "revoked" in pageledger("tokens", "list", env=cli_env, cwd=tmp_path).stdout
    assert pageledger("tokens", "revoke", "not-a-uuid", env=cli_env, cwd=tmp_path).returncode == 2
    bad_role = pageledger("tokens", "issue", "--role", "root", "--name", "x", env=cli_env, cwd=tmp_path)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_set_cost_validates_amounts(cli_env, tmp_path):
    ok = pageledger("printers", "set-cost", "office", "--mono", "0.05", "--colour", "0.25", "--paper", "A3=0.10,0.50",
                    env=cli_env, cwd=tmp_path)
    assert ok.returncode == 0 and "version 1" in ok.stdout
    again = pageledger("printers", "set-cost", "office", "--mono", "0.06", "--colour", "0.25", env=cli_env, cwd=tmp_path)
    assert "version 2" in again.stdout
    for bad in (["--mono", "cheap", "--colour", "1"], ["--mono", "0.00001", "--colour", "1"],
                ["--mono", "1", "--colour", "1", "--paper", "A3"]):
        result = pageledger("printers", "set-cost", "office", *bad, env=cli_env, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith("pageledger:"), bad


def test_projections_status_and_rebuild_report_progress(cli_env, tmp_path):
    from commands.job_reports import parse_batch
    from commands.jobs import TrackJobs
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings
    from tools.sample_jobs import sample_jobs

    rt = build_runtime(Settings.load(environ=cli_env))
    TrackJobs(rt.app, rt.printers)(parse_batch(json.dumps({"jobs": list(sample_jobs(300))}).encode()))
    rt.close()
    rebuilt = pageledger("projections", "rebuild", env=cli_env, cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "events/s" in rebuilt.stdout and "(100%)" in rebuilt.stderr
    status = pageledger("projections", "status", env=cli_env, cwd=tmp_path).stdout
    head = int(status.split("event log head:")[1].split()[0])
    assert f"jobs             position {head:>10}" in status
    unknown = pageledger("projections", "rebuild", "nope", env=cli_env, cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown projection" in unknown.stderr


def test_bad_configuration_is_a_clear_error(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env.update(PYTHONPATH=str(ROOT), PAGELEDGER_DATABASE_URL="mysql://nope", PAGELEDGER_PORT="eighty")
    result = pageledger("projections", "status", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "PAGELEDGER_PORT" in result.stderr


def test_up_takes_80_when_free_else_6320_else_the_configured_port():
    from pageledger.server import choose_port
    from pageledger.settings import Settings

    settings = Settings.load(environ={}, host="127.0.0.1", port=7777)
    assert choose_port(settings, 9999) == 9999
    held = []
    try:
        for port in (80, 6320):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
                s.listen()
                held.append(s)
            except OSError:
                s.close()  # taken already (or not permitted): just as good for this test
            if port == 80:
                assert choose_port(settings, None) == (6320 if _free(6320) else 7777)
        assert choose_port(settings, None) == 7777
    finally:
        for s in held:
            s.close()
    if _free(80):
        assert choose_port(settings, None) == 80


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
