"""The `pageledger` command as an admin uses it: real processes, real stores."""
from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest
import requests

from tests.conftest import ROOT, free_port, new_database_url, wait_until


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


@pytest.fixture
def created_env(cli_env, tmp_path):
    """`cli_env` with its database made by `pageledger db create`, as an admin starts."""
    created = pageledger("db", "create", env=cli_env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    return cli_env


def test_db_create_refuses_to_overwrite_without_the_flag(cli_env, tmp_path):
    assert pageledger("db", "create", env=cli_env, cwd=tmp_path).returncode == 0
    again = pageledger("db", "create", env=cli_env, cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert pageledger("db", "create", "--overwrite", env=cli_env, cwd=tmp_path).returncode == 0
    upgraded = pageledger("db", "upgrade", env=cli_env, cwd=tmp_path)
    assert upgraded.returncode == 0 and f"at revision {alembic_head()}" in upgraded.stdout


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


def test_tokens_issue_list_revoke_and_secrets_are_shown_once(created_env, tmp_path):
    issued = pageledger("tokens", "issue", "--role", "agent", "--name", "printsrv1", env=created_env, cwd=tmp_path)
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)
    listed = pageledger("tokens", "list", env=created_env, cwd=tmp_path)
    assert token["token_id"] in listed.stdout and "active" in listed.stdout
    assert token["token"] not in listed.stdout + listed.stderr + issued.stderr  # never logged
    assert pageledger("tokens", "revoke", token["token_id"], env=created_env, cwd=tmp_path).returncode == 0
    assert "revoked" in pageledger("tokens", "list", env=created_env, cwd=tmp_path).stdout
    assert pageledger("tokens", "revoke", "not-a-uuid", env=created_env, cwd=tmp_path).returncode == 2
    bad_role = pageledger("tokens", "issue", "--role", "root", "--name", "x", env=created_env, cwd=tmp_path)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_set_cost_validates_amounts(created_env, tmp_path):
    ok = pageledger("printers", "set-cost", "office", "--mono", "0.05", "--colour", "0.25", "--paper", "A3=0.10,0.50",
                    env=created_env, cwd=tmp_path)
    assert ok.returncode == 0 and "version 1" in ok.stdout
    again = pageledger("printers", "set-cost", "office", "--mono", "0.06", "--colour", "0.25",
                       env=created_env, cwd=tmp_path)
    assert "version 2" in again.stdout
    for bad in (["--mono", "cheap", "--colour", "1"], ["--mono", "0.00001", "--colour", "1"],
                ["--mono", "1", "--colour", "1", "--paper", "A3"]):
        result = pageledger("printers", "set-cost", "office", *bad, env=created_env, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith("pageledger:"), bad


def test_settings_set_one_field_and_refuse_a_bad_value(created_env, tmp_path):
    ok = pageledger("settings", "set", "timezone", "Europe/Paris", env=created_env, cwd=tmp_path)
    assert ok.returncode == 0 and "timezone = 'Europe/Paris'" in ok.stdout, ok.stderr
    shown = pageledger("settings", "show", env=created_env, cwd=tmp_path)
    assert "timezone = 'Europe/Paris'" in shown.stdout and "document_names = 'keep'" in shown.stdout
    for bad in (["timezone", "Nowhere/Land"], ["document_names", "shred"], ["no_such", "1"]):
        refused = pageledger("settings", "set", *bad, env=created_env, cwd=tmp_path)
        assert refused.returncode == 2 and refused.stderr.startswith("pageledger:"), (bad, refused.stderr)
    assert "timezone = 'Europe/Paris'" in pageledger("settings", "show", env=created_env, cwd=tmp_path).stdout


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


def plain_env(**changes: str) -> dict:
    """The environment of an admin's shell: no PAGELEDGER_* settings unless given."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env.update(PYTHONPATH=str(ROOT), **changes)
    return env


# Every command that needs an existing database, as an admin would type it. Only `up`, `serve`
# and `db create` may make a database.
COMMANDS_ON_AN_EXISTING_DATABASE = {
    "db upgrade": ["db", "upgrade"],
    "projections status": ["projections", "status"],
    "projections rebuild": ["projections", "rebuild"],
    "projections repair": ["projections", "repair"],
    "tokens issue": ["tokens", "issue", "--role", "admin", "--name", "alice"],
    "tokens list": ["tokens", "list"],
    "tokens revoke": ["tokens", "revoke", "6f1c2a52-7a51-4c38-9c1e-0d5e3b1f0a11"],
    "printers set-cost": ["printers", "set-cost", "office", "--mono", "0.05", "--colour", "0.25"],
    "printers secure": ["printers", "secure", "office", "on"],
    "users sync": ["users", "sync"],
    "users list": ["users", "list"],
    "users add": ["users", "add", "alice", "--role", "user", "--password-stdin"],
    "users passwd": ["users", "passwd", "alice", "--password-stdin"],
    "users role": ["users", "role", "alice", "admin"],
    "users remove": ["users", "remove", "alice"],
    "licence show": ["licence", "show"],
    "licence activate": ["licence", "activate", "--key", "KEY", "--company", "Acme"],
    "licence track-unlicensed": ["licence", "track-unlicensed", "on"],
    "notices send": ["notices", "send"],
    "settings show": ["settings", "show"],
    "settings set": ["settings", "set", "timezone", "Europe/Paris"],
    "printers release": ["printers", "release", "office", "--hold-hours", "2"],
    "held expire": ["held", "expire"],
    "held sweep": ["held", "sweep"],
    "release-service": ["release-service"],
    "audit as-of": ["audit", "as-of", "2026-01-31T23:59:59Z"],
    "audit verify": ["audit", "verify"],
    "audit changes": ["audit", "changes"],
    "privacy erase": ["privacy", "erase", "alice", "--yes"],
    "worker": ["worker", "--burst"],
    "reports run": ["reports", "run", "usage"],
    "reports schedule": ["reports", "schedule", "weekly", "--report", "usage", "--cron", "0 7 * * 1", "--to",
                         "admin@example.org"],
    "reports schedules": ["reports", "schedules"],
    "reports unschedule": ["reports", "unschedule", "weekly"],
    "reports run-due": ["reports", "run-due"],
}
WAYS_TO_POINT_AT_A_DATABASE = ("--data-dir", "PAGELEDGER_DATA_DIR", "--database-url", "PAGELEDGER_DATABASE_URL",
                               "--config", "PAGELEDGER_CONFIG")


def _leaf_commands(parser, prefix: str = "") -> set[str]:
    import argparse

    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _leaf_commands(sub, f"{prefix}{name} ") or {prefix + name}
    return found


def test_the_refusal_tests_cover_every_command_but_up_serve_and_db_create():
    from pageledger.cli import _parser

    assert _leaf_commands(_parser()) - {"up", "serve", "db create"} == set(COMMANDS_ON_AN_EXISTING_DATABASE)


@pytest.mark.parametrize("command", COMMANDS_ON_AN_EXISTING_DATABASE.values(), ids=COMMANDS_ON_AN_EXISTING_DATABASE)
def test_a_command_run_from_another_directory_refuses_the_missing_database_and_creates_nothing(tmp_path, command):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = pageledger(*command, env=plain_env(), cwd=elsewhere)
    assert result.returncode != 0, result.stdout
    assert str(elsewhere.resolve() / "var" / "pageledger.db") in result.stderr
    assert all(way in result.stderr for way in WAYS_TO_POINT_AT_A_DATABASE), result.stderr
    assert list(elsewhere.iterdir()) == []


def test_an_empty_sqlite_file_is_a_missing_database_and_is_left_as_it_was(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    result = pageledger("--database-url", f"sqlite:///{empty}", "tokens", "list", env=plain_env(), cwd=tmp_path)
    assert result.returncode != 0 and str(empty) in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["empty.db"] and empty.stat().st_size == 0


def test_the_ways_the_refusal_names_find_the_database_from_another_directory(tmp_path):
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    site.mkdir()
    elsewhere.mkdir()
    assert pageledger("db", "create", env=plain_env(), cwd=site).returncode == 0
    config = tmp_path / "pageledger.toml"
    config.write_text(f'[pageledger]\ndata_dir = "{site / "var"}"\n')
    for args, env in ((["--data-dir", str(site / "var")], plain_env()),
                      ([], plain_env(PAGELEDGER_DATA_DIR=str(site / "var"))),
                      (["--database-url", f"sqlite:///{site / 'var' / 'pageledger.db'}"], plain_env()),
                      ([], plain_env(PAGELEDGER_DATABASE_URL=f"sqlite:///{site / 'var' / 'pageledger.db'}")),
                      (["--config", str(config)], plain_env()),
                      ([], plain_env(PAGELEDGER_CONFIG=str(config)))):
        listed = pageledger(*args, "projections", "status", env=env, cwd=elsewhere)
        assert listed.returncode == 0 and "event log head" in listed.stdout, (args, listed.stderr)


def test_a_postgresql_database_that_is_missing_or_has_no_pageledger_tables_is_refused_and_left_alone(
        tmp_path, request, pg_admin):
    import os

    import sqlalchemy as sa

    empty = new_database_url("postgresql", tmp_path, request)  # exists, holds no tables
    server, empty_name = empty.rsplit("/", 1)
    missing_name = "pl_missing_" + os.urandom(4).hex()
    for url, name in ((empty, empty_name), (f"{server}/{missing_name}", missing_name)):
        result = pageledger("--database-url", url, "users", "list", env=plain_env(), cwd=tmp_path)
        assert result.returncode != 0 and name in result.stderr, result.stderr
        assert all(way in result.stderr for way in WAYS_TO_POINT_AT_A_DATABASE), result.stderr
    with pg_admin.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": missing_name}).first()
    assert found is None
    engine = sa.create_engine(empty.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert list(tmp_path.iterdir()) == []
    assert pageledger("db", "create", "--overwrite", env=plain_env(PAGELEDGER_DATABASE_URL=empty),
                      cwd=tmp_path).returncode == 0
    listed = pageledger("users", "list", env=plain_env(PAGELEDGER_DATABASE_URL=empty), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr


@contextmanager
def pageledger_up(workdir, env: dict, *args: str, umask: int = -1):
    """`pageledger up` in a subprocess; yields the base URL it printed, once that URL answers."""
    log = open(workdir / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "pageledger.cli", "up", *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True, umask=umask)
    try:
        url = next((line.split("is listening on", 1)[1].split()[0] for line in proc.stdout
                    if "is listening on" in line), None)
        assert url, (workdir / "server.log").read_text()[-3000:]
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe from filling

        def healthy() -> bool:
            try:
                return requests.get(url.rstrip("/") + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return proc.poll() is not None  # exited: stop waiting, the caller's checks fail
        wait_until(healthy, timeout=30)
        assert proc.poll() is None, (workdir / "server.log").read_text()[-3000:]
        yield url.rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


PERSONAL_FILES = ("pageledger.db", "pageledger.db-wal", "pageledger.db-shm", "session.key", "first-tokens.json",
                  "directory.json")  # setup-code is gone once setup is done: its mode is tested on its own


def _use_the_server(url: str, var) -> None:
    """Write through the server: a job (the -wal and -shm files) and local setup (directory.json)."""
    tokens = json.loads((var / "first-tokens.json").read_text())
    job = {"job_key": "printsrv1/1", "user": "alice", "printer": "office", "submitted_at": "2026-11-25T09:00:00+00:00",
           "pages": 4, "copies": 1, "colour_pages": 0, "duplex": False, "paper": "A4", "document": "Payslip.pdf"}
    r = requests.post(url + "/Services/jobs", json={"jobs": [job]}, timeout=30,
                      headers={"Authorization": f"Bearer {tokens['agent_token']}"})
    assert r.status_code == 200, r.text
    r = requests.post(url + "/Setup/NetworkSetup", timeout=30,
                      json={"network_type": "local", "admin_login": "boss", "admin_password": "correct-horse-9",
                            "setup_code": (var / "setup-code").read_text().strip()})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask-022", "umask-002"])
def test_the_data_directory_and_the_personal_files_in_it_are_private_whatever_the_umask(tmp_path, umask):
    env, var = plain_env(PAGELEDGER_PROJECTION_POLL_SECONDS="0.02"), tmp_path / "var"
    with pageledger_up(tmp_path, env, "--port", str(free_port()), umask=umask) as url:
        _use_the_server(url, var)
        files = {name: mode(var / name) for name in PERSONAL_FILES}  # while the server holds the -wal and -shm
    assert files == dict.fromkeys(PERSONAL_FILES, 0o600)
    assert (mode(var), mode(var / "spool")) == (0o700, 0o700)
    synced = subprocess.run([sys.executable, "-m", "pageledger.cli", "users", "sync"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, umask=umask)
    assert synced.returncode == 0, synced.stderr
    assert mode(var / "pin.key") == 0o600


def test_the_files_of_a_data_directory_made_before_are_made_private_when_the_server_starts(tmp_path):
    env, var = plain_env(PAGELEDGER_PROJECTION_POLL_SECONDS="0.02"), tmp_path / "var"
    assert pageledger("db", "create", env=env, cwd=tmp_path).returncode == 0
    (var / "spool").mkdir(exist_ok=True)
    (var / "directory.json").write_text('{"type": "local"}')  # as an admin might copy it in
    (var / "pin.key").write_bytes(b"0123456789abcdef0123456789abcdef")
    for path in (var, var / "spool"):
        path.chmod(0o755)
    for path in (var / "pageledger.db", var / "directory.json", var / "pin.key"):
        path.chmod(0o644)
    with pageledger_up(tmp_path, env, "--port", str(free_port()), umask=0o022):
        pass
    assert (mode(var), mode(var / "spool")) == (0o700, 0o700)
    private = ("pageledger.db", "directory.json", "pin.key", "session.key", "first-tokens.json")
    assert {name: mode(var / name) for name in private} == dict.fromkeys(private, 0o600)


def test_the_port_is_the_flag_else_the_configured_one_else_80_when_free_else_6320(tmp_path):
    from pageledger.server import choose_port
    from pageledger.settings import Settings

    config = tmp_path / "pageledger.toml"
    config.write_text("[pageledger]\nport = 7778\n")
    configured = [Settings.load(environ={}, host="127.0.0.1", port=7777),
                  Settings.load(environ={"PAGELEDGER_PORT": "7777"}, host="127.0.0.1"),
                  Settings.load(config, environ={}, host="127.0.0.1")]
    unconfigured = Settings.load(environ={}, host="127.0.0.1")
    assert [choose_port(s, 9999) for s in configured + [unconfigured]] == [9999] * 4
    held = []
    try:
        for port in (None, 80, 6320):  # nothing held, then 80, then 80 and 6320
            if port is not None:
                held.append(_hold(port))
            # A configured port is taken even when 80 is free, even when it is busy (the bind says so).
            assert [choose_port(s, None) for s in configured] == [7777, 7777, 7778], port
            if _free(80):
                assert choose_port(unconfigured, None) == 80
            elif _free(6320):
                assert choose_port(unconfigured, None) == 6320
            else:
                with pytest.raises(SystemExit, match="PAGELEDGER_PORT"):
                    choose_port(unconfigured, None)
    finally:
        for s in held:
            if s is not None:
                s.close()


def _hold(port: int):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        s.listen()
        return s
    except OSError:
        s.close()  # taken already (or not permitted): just as good for this test
        return None


def test_up_listens_on_pageledger_port_and_prints_that_exact_base_url(tmp_path):
    port = free_port()
    env = plain_env(PAGELEDGER_PORT=str(port), PAGELEDGER_PROJECTION_POLL_SECONDS="0.02")
    with pageledger_up(tmp_path, env) as url:  # the URL it printed answers /healthz
        assert url == f"http://localhost:{port}"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def alembic_head() -> str:
    """The newest revision of migrations/ (what `db upgrade` must reach)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import migrations

    config = Config()
    config.set_main_option("script_location", str(migrations.HERE))
    return ScriptDirectory.from_config(config).get_current_head()
