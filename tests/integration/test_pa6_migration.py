"""The PA6 migration against real legacy databases: SQLite and PostgreSQL, read through the
real SQLite3 and PostgreSQL Unicode ODBC drivers, with the default PA6 mapping and the flat Job
Manager export mapping, into PageLedger on both stores.

Expected figures are computed here from the fixture's own rows (tools/pa6_migrate/sample_legacy.py), not from
the tool, so reconciliation saying "ok" is checked against an independent count.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
import sqlalchemy as sa

from domain.costs import CostSchedule, sheets_for
from domain.jobs import PrintJob, job_id
from domain.legacy_migration import LegacyMigration, migration_id
from domain.printers import printer_id
from projections.jobs import JobFilter, jobs as jobs_table, list_jobs
from projections.report_period import parse_parameters
from projections.reports import CATALOGUE, ReportSources, run_report
from tools.pa6_migrate import sample_legacy as L
from tests.conftest import PG_ADMIN_URL, ROOT, new_database_url
from tools.pa6_migrate.cli import main

ZONE = "Europe/Berlin"


def run(dsn: str, mapping: str, settings, tmp_path: Path, *extra: str, zone: str = ZONE) -> int:
    return main(["migrate", "--dsn", dsn, "--mapping", mapping, "--site-zone", zone,
                 "--database-url", settings.resolved_database_url, "--data-dir", str(settings.data_dir),
                 "--rejects", str(tmp_path / "rejects.csv"), "--reconciliation", str(tmp_path / "reconciliation.csv"),
                 "--no-progress", *extra])


def rejects(tmp_path: Path) -> list[dict]:
    with open(tmp_path / "rejects.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def reconciliation(tmp_path: Path) -> list[dict]:
    with open(tmp_path / "reconciliation.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def events_stored(runtime) -> int:
    return runtime.app.recorder.max_notification_id() or 0


def assert_rejects_named(tmp_path: Path, bad: dict) -> None:
    by_id: dict[str, list[str]] = {}
    for r in rejects(tmp_path):
        if r["kind"] == "job":
            by_id.setdefault(r["legacy_id"], []).append(r["reason"].lower())
    for legacy_id, words in bad.items():
        reasons = by_id.get(str(legacy_id), [])
        assert reasons and all(words.lower() in reason for reason in reasons), (legacy_id, words, reasons)


def expected_months(lg: L.Legacy, zone: str = ZONE) -> dict[str, list[int]]:
    """Jobs, impressions, sheets, cost (1/10,000) by local month of the rows that must be migrated."""
    out: dict[str, list[int]] = {}
    for r in lg.jobs:
        if r[0] is None or r[0] in lg.bad:
            continue
        at = r[5] if isinstance(r[5], datetime) else datetime.fromisoformat(r[5])
        t = out.setdefault(f"{at.year:04d}-{at.month:02d}", [0, 0, 0, 0])
        t[0] += 1
        t[1] += r[6] * r[7]
        t[2] += sheets_for(pages=r[6], copies=r[7], duplex=bool(r[9]))
        t[3] += int(Decimal(r[11]) * 10_000)
    return out


def assert_reconciled(tmp_path: Path, expected: dict[str, list[int]]) -> None:
    lines = reconciliation(tmp_path)
    assert lines and all(line["status"] == "ok" for line in lines)
    by_month = {line["month"]: line for line in lines}
    for month, (n, pages, sheets, cost) in expected.items():
        line = by_month[month]
        assert (int(line["pageledger_jobs"]), int(line["pageledger_pages"]), int(line["pageledger_sheets"]),
                int(Decimal(line["pageledger_cost"]) * 10_000)) == (n, pages, sheets, cost), month


def new_pg_database(pg_admin, request) -> str:
    name = f"pa6_legacy_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    request.addfinalizer(drop)
    return name


def pg_conninfo(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


# --- the default PA6 layout -----------------------------------------------------------------

def test_pa6_sqlite_legacy_is_replayed_reconciled_and_a_rerun_adds_nothing(runtime, settings, tmp_path):
    lg = L.build(1500, text_dates=True)
    dsn = L.to_sqlite(lg, tmp_path / "legacy.db")

    assert run(dsn, "pa6-default", settings, tmp_path) == 0

    assert_rejects_named(tmp_path, lg.bad)
    assert_reconciled(tmp_path, expected_months(lg))
    runtime.catch_up()
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs_table)).scalar() == 1502
        # Counted by the legacy system, not by our agent: never listed as pages the agent could not count.
        assert dict(conn.execute(sa.select(jobs_table.c.pdl, sa.func.count()).group_by(jobs_table.c.pdl)).all()) == {
            "legacy": 1502}
    workflow = run_report(runtime.reader, "workflow-issues", parse_parameters(
        {"from": "2018-01-01", "to": "2026-01-01"}, site_timezone="UTC", now=int(time.time() * 1e6),
        allowed=CATALOGUE["workflow-issues"].parameters), ReportSources(settings=runtime.site_settings.values,
                                                                 schedule_of=runtime.printers.schedule_of))
    assert [len(s.frame) for s in workflow.sections if s.name == "pdl_unknown"] == [0]
    # The events: legacy id, original time (site zone applied), cost as charged, legacy schedule.
    job: PrintJob = runtime.app.repository.get(job_id(runtime.app.server_id, "legacy:pa6:1"))
    row = lg.jobs[0]
    local = datetime.fromisoformat(row[5]).replace(tzinfo=ZoneInfo(ZONE))
    assert job.legacy_id == "1" and job.submitted_at == int(local.timestamp() * 1_000_000)
    # The login is sealed with the person's key (adapters.personal_keys): the event names a person.
    from types import SimpleNamespace

    from adapters.personal_keys import open_job_views
    opened = SimpleNamespace(user=job.user, person=job.person, client_host=job.client_host, document=job.document,
                             originator_id=job.id)
    open_job_views(runtime.personal_keys, [opened])
    assert job.user == "" and job.person > 0
    assert job.cost == int(Decimal(row[11]) * 10_000) and opened.user == f"user{row[1]:04d}"
    assert job.schedule == (1 if local.year < 2022 else 2)
    printer = runtime.app.repository.get(printer_id(runtime.app.server_id, "hq-printer-01"))
    assert printer.schedule_version == 2 and printer.schedule.mono_page == 600
    migration = runtime.app.repository.get(migration_id(runtime.app.server_id, "pa6"))
    assert migration.users == 300 and migration.jobs == 1502 and migration.through == 1515
    user = runtime.app.repository.get(runtime.app.user_id("local", "user0001"))
    assert user.profile == {"full_name": "User Number 1", "email": "user1@example.org", "department": "Dept 2"}
    # The hour Berlin skipped is read forward (02:30 → 01:30 UTC); the repeated one as its first.
    gap = runtime.app.repository.get(job_id(runtime.app.server_id, "legacy:pa6:1501"))
    overlap = runtime.app.repository.get(job_id(runtime.app.server_id, "legacy:pa6:1502"))
    assert gap.submitted_at == int(datetime.fromisoformat("2021-03-28T01:30:00+00:00").timestamp() * 1e6)
    assert overlap.submitted_at == int(datetime.fromisoformat("2021-10-31T00:30:00+00:00").timestamp() * 1e6)

    before = events_stored(runtime)
    assert run(dsn, "pa6-default", settings, tmp_path) == 0
    assert events_stored(runtime) == before, "a re-run recorded something"
    assert_reconciled(tmp_path, expected_months(lg))


def test_pa6_postgresql_legacy_with_real_types_through_the_unicode_driver(runtime, settings, tmp_path, pg_admin,
                                                                          request):
    """100,000 legacy jobs over six years in a UTF-8 PostgreSQL database with real types
    (timestamp, boolean, numeric), read through the PostgreSQL Unicode driver, into either
    store: every bad row such a database can hold set aside, reconciliation exact. (A cp1252
    name and an unparsable date need a SQL_ASCII database with text columns: `big_legacy`.)"""
    lg = L.build(BIG_JOBS)
    name = new_pg_database(pg_admin, request)
    L.to_postgres(lg, pg_conninfo(name))

    assert run(L.pg_dsn(name), "pa6-default", settings, tmp_path) == 0

    assert_rejects_named(tmp_path, lg.bad)
    assert_reconciled(tmp_path, expected_months(lg))
    reasons = " | ".join(r["reason"] for r in rejects(tmp_path))
    assert "no legacy id" in reasons


def test_dry_run_checks_and_reconciles_but_writes_nothing(runtime, settings, tmp_path):
    lg = L.build(800, text_dates=True)
    dsn = L.to_sqlite(lg, tmp_path / "legacy.db")
    before = events_stored(runtime)

    assert run(dsn, "pa6-default", settings, tmp_path, "--dry-run") == 0

    assert events_stored(runtime) == before
    assert not runtime.app.repository.__contains__(migration_id(runtime.app.server_id, "pa6"))
    assert_rejects_named(tmp_path, lg.bad)
    assert_reconciled(tmp_path, expected_months(lg))


def test_max_rejects_stops_a_run_that_is_mapped_wrong_before_writing_its_batch(runtime, settings, tmp_path):
    lg = L.build(300, text_dates=True)
    dsn = L.to_sqlite(lg, tmp_path / "legacy.db")

    assert run(dsn, "pa6-default", settings, tmp_path, "--max-rejects", "3", "--batch", "100000") == 3

    migration: LegacyMigration = runtime.app.repository.get(migration_id(runtime.app.server_id, "pa6"))
    assert migration.jobs == 0 and migration.through is None
    assert job_id(runtime.app.server_id, "legacy:pa6:1") not in runtime.app.repository


def test_a_mapping_naming_a_missing_table_fails_with_the_query_and_no_traceback(runtime, settings, tmp_path, capsys):
    dsn = L.to_sqlite(L.build(10, bad=False, text_dates=True), tmp_path / "legacy.db")
    mapping = tmp_path / "wrong.toml"
    mapping.write_text('[jobs]\ntable = "NoSuchJobs"\nkey = "id"\nuser = "u"\nprinter = "p"\ntime = "t"\n'
                       'pages = "n"\ncopies = "c"\ncost = "x"\n')
    assert run(dsn, str(mapping), settings, tmp_path) == 1
    assert "NoSuchJobs" in capsys.readouterr().err


# --- the flat Job Manager export ------------------------------------------------------------

def flat_expected(flat: L.Flat) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in flat.rows:
        if r[0] in flat.bad:
            continue
        at = datetime.strptime(r[2], L.FLAT_DATE)
        t = out.setdefault(f"{at.year:04d}-{at.month:02d}", [0, 0, 0, 0])
        t[0] += 1
        t[1] += r[4]
        t[2] += r[4]
        t[3] += int(r[6] * 10_000)
    return out


def test_job_manager_export_from_sqlite(runtime, settings, tmp_path):
    flat = L.build_flat(1000)
    dsn = L.flat_to_sqlite(flat, tmp_path / "export.db")

    assert run(dsn, "job-manager-export", settings, tmp_path, zone="America/New_York") == 0

    assert_rejects_named(tmp_path, flat.bad)
    assert_reconciled(tmp_path, flat_expected(flat))
    job = runtime.app.repository.get(job_id(runtime.app.server_id, "legacy:pa6:1"))
    assert job.printer == "Job Manager export" and job.billing_code == flat.rows[0][8]
    assert any(r["kind"] == "user" and "utf-8" in r["reason"] for r in rejects(tmp_path))


def test_job_manager_export_from_postgresql(runtime, settings, tmp_path, pg_admin, request):
    flat = L.build_flat(1000, cp1252=False)  # a UTF-8 PostgreSQL database cannot hold cp1252 bytes
    name = new_pg_database(pg_admin, request)
    L.flat_to_postgres(flat, pg_conninfo(name))

    assert run(L.pg_dsn(name), "job-manager-export", settings, tmp_path, zone="America/New_York") == 0

    assert_rejects_named(tmp_path, flat.bad)
    assert_reconciled(tmp_path, flat_expected(flat))


# --- killed and resumed ---------------------------------------------------------------------

def test_a_run_killed_mid_way_resumes_with_no_gap_and_no_double(settings, tmp_path):
    from pageledger.bootstrap import build_runtime

    build_runtime(settings).close()  # `pageledger db create`
    lg = L.build(12_000, text_dates=True)
    dsn = L.to_sqlite(lg, tmp_path / "legacy.db")
    command = [sys.executable, "-m", "tools.pa6_migrate", "migrate", "--dsn", dsn, "--mapping", "pa6-default",
               "--site-zone", ZONE, "--database-url", settings.resolved_database_url,
               "--data-dir", str(settings.data_dir), "--rejects", str(tmp_path / "rejects.csv"),
               "--reconciliation", str(tmp_path / "reconciliation.csv"), "--batch", "250", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "first.log", "wb")
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if b'"message": "jobs: ' in (tmp_path / "first.log").read_bytes() and _checkpointed(settings) > 2000:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the first run ended before it could be killed: " + \
        (tmp_path / "first.log").read_text()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_when_killed = _checkpointed(settings)
    assert 0 < done_when_killed < 12_002

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming migration pa6" in second.stderr

    with build_runtime(settings) as runtime:
        migration = runtime.app.repository.get(migration_id(runtime.app.server_id, "pa6"))
        assert migration.jobs == 12_002
        runtime.catch_up()
        with runtime.reader.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(jobs_table)).scalar() == 12_002
    assert_rejects_named(tmp_path, lg.bad)
    assert len([r for r in rejects(tmp_path) if r["kind"] == "job"]) == len(lg.bad) + 1 + lg.unkeyed
    assert_reconciled(tmp_path, expected_months(lg))


def _checkpointed(settings) -> int:
    """Jobs stored so far, read straight from the event store while the first run writes."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        import sqlite3

        try:
            db = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True, timeout=1)
            n = db.execute("SELECT COUNT(*) FROM stored_events WHERE topic IN ('T', 'PrintJob.Tracked')").fetchone()[0]
            db.close()
            return n
        except sqlite3.Error:
            return 0
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT COUNT(*) FROM pageledger_events WHERE topic IN ('T', 'PrintJob.Tracked')"
                                ).fetchone()[0]
    except psycopg.Error:
        return 0


# --- the big ones: one legacy database per source, both mappings ------------------------------

BIG_JOBS = 100_000
FLAT_ROWS = 5_000


@pytest.fixture(scope="module")
def big_legacy(request, pg_admin, tmp_path_factory):
    """≥100,000 PA6 jobs over six years with every kind of bad row (text dates, so one can be
    unparsable, and a cp1252 document name), and a Job Manager export table with its own bad
    rows (a cp1252 user name among them), in ONE database per source, built once per module."""
    lg = L.build(BIG_JOBS, text_dates=True)
    flat = L.build_flat(FLAT_ROWS)
    built: dict[str, str] = {}

    def legacy(source: str) -> tuple[L.Legacy, L.Flat, str]:
        if source not in built:
            if source == "sqlite":
                path = tmp_path_factory.mktemp("legacy") / "legacy.db"
                L.to_sqlite(lg, path)
                built[source] = L.flat_to_sqlite(flat, path)
            else:
                # A SQL_ASCII database: its varchars hold whatever bytes the legacy system wrote,
                # which is how cp1252 text ends up in a PostgreSQL legacy database. Read through
                # the ANSI driver (the Unicode one's query is refused whole), its dates and
                # amounts are text (see sample_legacy.pg_dsn); the real types are read by
                # test_pa6_postgresql_legacy_with_real_types_through_the_unicode_driver.
                name = f"pa6_legacy_{uuid.uuid4().hex[:10]}"
                with pg_admin.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}" ENCODING \'SQL_ASCII\' LC_COLLATE \'C\' '
                                         f"LC_CTYPE 'C' TEMPLATE template0"))

                def drop() -> None:
                    with pg_admin.connect() as conn:
                        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

                request.addfinalizer(drop)
                L.to_postgres(lg, pg_conninfo(name), text_columns=True)
                L.flat_to_postgres(flat, pg_conninfo(name), text_columns=True)
                built[source] = L.pg_dsn(name, code_page_text=True)
        return lg, flat, built[source]

    return legacy


def usage_of_month(runtime, month: str) -> list[int]:
    """Jobs, impressions, sheets, cost of a local month from the usage report, the query that
    GET /api/v1/reports/usage runs."""
    year, m = int(month[:4]), int(month[5:])
    last = (datetime(year + m // 12, m % 12 + 1, 1) - datetime(year, m, 1)).days
    params = parse_parameters({"from": f"{month}-01", "to": f"{month}-{last:02d}", "group_by": "month"},
                              site_timezone=ZONE, now=int(time.time() * 1e6), allowed=CATALOGUE["usage"].parameters)
    report = run_report(runtime.reader, "usage", params, ReportSources(settings=runtime.site_settings.values,
                                                                       schedule_of=runtime.printers.schedule_of))
    usage = next(s for s in report.sections if s.name == "usage")
    assert list(usage.frame["month"]) == [month]
    return [int(usage.totals[k]) for k in ("jobs", "impressions", "sheets", "cost")]


@pytest.mark.parametrize("source", ["sqlite", "postgresql"])
def test_a_hundred_thousand_jobs_with_every_bad_row_match_the_reports_month_by_month(source, big_legacy, tmp_path,
                                                                                       request):
    """Legacy database and PageLedger on the same kind of store (SQLite→SQLite through the
    SQLite3 driver, PostgreSQL→PostgreSQL through the PostgreSQL driver), the default mapping
    and then the flat export's: every bad row set aside with its reason, reconciliation exact,
    and the usage report of past months equal to the legacy totals."""
    from pageledger.bootstrap import build_runtime
    from pageledger.settings import Settings

    lg, flat, dsn = big_legacy(source)
    started = time.monotonic()
    kinds = ("missing user", "user is NULL", "negative pages", "absurd pages", "in the future", "copies is NULL",
             "cost is NULL", "disagrees", "not a date", "not utf-8", "duplicate legacy id")
    assert set(kinds) <= set(lg.bad.values())

    (tmp_path / "pa6").mkdir()
    settings = Settings.load(environ={}, database_url=new_database_url(source, tmp_path / "pa6", request),
                             data_dir=tmp_path / "pa6" / "var")
    build_runtime(settings).close()  # `pageledger db create`
    assert run(dsn, "pa6-default", settings, tmp_path) == 0

    expected = expected_months(lg)
    assert_reconciled(tmp_path, expected)
    assert_rejects_named(tmp_path, lg.bad)
    assert len([r for r in rejects(tmp_path) if r["kind"] == "job"]) == len(lg.bad) + 1 + lg.unkeyed
    with build_runtime(settings) as runtime:
        runtime.catch_up()
        # 2020-06 holds the bad rows (set aside: not in the report), 2023-03 an ordinary month.
        for month in ("2020-06", "2023-03"):
            assert usage_of_month(runtime, month) == expected[month], month

    (tmp_path / "flat").mkdir()
    settings = Settings.load(environ={}, database_url=new_database_url(source, tmp_path / "flat", request),
                             data_dir=tmp_path / "flat" / "var")
    build_runtime(settings).close()
    assert run(dsn, "job-manager-export", settings, tmp_path) == 0

    assert_rejects_named(tmp_path, flat.bad)
    flat_months = flat_expected(flat)
    assert_reconciled(tmp_path, flat_months)
    with build_runtime(settings) as runtime:
        runtime.catch_up()
        assert usage_of_month(runtime, "2021-05") == flat_months["2021-05"]
    print(f"{source}: {BIG_JOBS:,}-job and {FLAT_ROWS:,}-row migrations took {time.monotonic() - started:.1f} s")


# --- a printer PageLedger has already -------------------------------------------------------

def test_legacy_schedules_for_a_printer_that_exists_are_refused_unless_the_operator_chooses(runtime, settings,
                                                                                            tmp_path, capsys):
    lg = L.build(300, bad=False, text_dates=True)
    dsn = L.to_sqlite(lg, tmp_path / "legacy.db")
    current = CostSchedule(mono_page=150, colour_page=900)
    runtime.set_cost_schedule("hq-printer-03", current)
    before = events_stored(runtime)

    assert run(dsn, "pa6-default", settings, tmp_path) == 2

    err = capsys.readouterr().err
    assert "hq-printer-03" in err and "--existing-printers" in err and "Nothing was written" in err
    assert events_stored(runtime) == before
    assert migration_id(runtime.app.server_id, "pa6") not in runtime.app.repository
    assert run(dsn, "pa6-default", settings, tmp_path, "--dry-run") == 2

    assert run(dsn, "pa6-default", settings, tmp_path, "--existing-printers", "keep-price") == 0

    printer = runtime.app.repository.get(printer_id(runtime.app.server_id, "hq-printer-03"))
    assert printer.schedule == current and printer.schedule_version == 4  # its own, 2 legacy, its own again
    assert printer.name == "hq-printer-03"
    migration = runtime.app.repository.get(migration_id(runtime.app.server_id, "pa6"))
    assert migration.printers["hq-printer-03"] == [2, 3]
    first = next(r for r in lg.jobs if r[2] == 3)
    job = runtime.app.repository.get(job_id(runtime.app.server_id, f"legacy:pa6:{first[0]}"))
    local = datetime.fromisoformat(first[5])
    assert job.schedule == (2 if local.year < 2022 else 3)
    assert job.cost == int(Decimal(first[11]) * 10_000)
    assert_reconciled(tmp_path, expected_months(lg))
    # Resumed or re-run, the choice is not asked again: the printer was replayed by this migration.
    assert run(dsn, "pa6-default", settings, tmp_path) == 0
    assert runtime.app.repository.get(printer_id(runtime.app.server_id, "hq-printer-03")).schedule_version == 4


def test_take_legacy_price_makes_the_newest_legacy_schedule_the_printers_price(runtime, settings, tmp_path):
    lg = L.build(100, bad=False, text_dates=True)
    dsn = L.to_sqlite(lg, tmp_path / "legacy.db")
    runtime.set_cost_schedule("hq-printer-03", CostSchedule(mono_page=150, colour_page=900))

    assert run(dsn, "pa6-default", settings, tmp_path, "--existing-printers", "take-legacy-price") == 0

    printer = runtime.app.repository.get(printer_id(runtime.app.server_id, "hq-printer-03"))
    assert printer.schedule_version == 3
    assert (printer.schedule.mono_page, printer.schedule.colour_page) == (600, 3000)


# --- inspect --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_inspect_lists_tables_columns_and_rows_through_odbc_and_suggests_a_mapping(kind, tmp_path, capsys,
                                                                                  request):
    flat = L.build_flat(25, bad=False)
    if kind == "sqlite":
        dsn = L.flat_to_sqlite(flat, tmp_path / "export.db")
    else:
        name = new_pg_database(request.getfixturevalue("pg_admin"), request)
        L.flat_to_postgres(flat, pg_conninfo(name))
        dsn = L.pg_dsn(name)

    assert main(["inspect", "--dsn", dsn, "--write-mapping", str(tmp_path / "suggested.toml")]) == 0

    out = capsys.readouterr().out
    assert "JobManagerExport  (25 rows)" in out
    assert "Date Printed" in out and "Cost per unit" in out
    suggested = (tmp_path / "suggested.toml").read_text()
    for line in ('table = "JobManagerExport"', 'key = "Row"', 'user = "User"', 'time = "Date Printed"',
                 'copies = "Copies"', 'cost = "Total Cost"', 'billing_code = "Client Code"'):
        assert line in suggested, line


def test_inspect_of_an_unreachable_database_names_it_without_its_password(capsys):
    assert main(["inspect", "--dsn", "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=1;DATABASE=x;UID=u;"
                 "PWD=hunter2;"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err and "hunter2" not in err and "PWD=***" in err


def test_reconciliation_finds_a_job_missing_from_the_reports(runtime, settings, tmp_path, capsys):
    lg = L.build(400, bad=False, text_dates=True)
    dsn = L.to_sqlite(lg, tmp_path / "legacy.db")
    assert run(dsn, "pa6-default", settings, tmp_path) == 0
    args = ["reconcile", "--dsn", dsn, "--mapping", "pa6-default", "--site-zone", ZONE,
            "--database-url", settings.resolved_database_url, "--data-dir", str(settings.data_dir),
            "--rejects", str(tmp_path / "rejects.csv"), "--reconciliation", str(tmp_path / "reconciliation.csv")]
    assert main(args) == 0
    with runtime.writer.begin() as conn:  # a read model that lost a row (as only a bug could)
        seq = conn.execute(sa.select(sa.func.max(jobs_table.c.seq))).scalar()
        conn.execute(jobs_table.delete().where(jobs_table.c.seq == seq))

    assert main(args) == 4

    assert "MISMATCH" in capsys.readouterr().out
    lines = reconciliation(tmp_path)
    assert [line["month"] for line in lines if line["status"] != "ok"] and lines[-1]["status"] == "MISMATCH"


def test_a_migration_into_a_database_that_does_not_exist_is_refused(tmp_path, capsys):
    dsn = L.to_sqlite(L.build(5, bad=False, text_dates=True), tmp_path / "legacy.db")
    code = main(["migrate", "--dsn", dsn, "--mapping", "pa6-default", "--site-zone", ZONE,
                 "--database-url", f"sqlite:///{tmp_path / 'nowhere.db'}", "--data-dir", str(tmp_path / "var")])
    assert code == 2 and not (tmp_path / "nowhere.db").exists()


def test_the_odbc_driver_hands_text_over_undecoded_and_binary_columns_marked(tmp_path):
    """Narrow text arrives as the driver's bytes (decoded by the row checks, so a cp1252 value
    sets one row aside) and a binary column arrives marked, so a mapping that reads it as text
    is told it is binary rather than having its bytes read as characters."""
    import sqlite3

    from tools.pa6_migrate import source as src
    from tools.pa6_migrate.rows import Bad, text

    path = tmp_path / "types.db"
    db = sqlite3.connect(path)
    db.execute('CREATE TABLE "T" ("Name" VARCHAR(50), "Blob" BLOB, "N" INTEGER)')
    db.execute('INSERT INTO "T" VALUES (?, ?, ?)', ("J\u00fcrgen", b"\x00\x01\xff", 7))
    db.execute('INSERT INTO "T" VALUES (CAST(? AS TEXT), NULL, 8)', (b"Caf\xe9",))
    db.commit()
    db.close()
    conn = src.connect(L.sqlite_dsn(path))
    rows = [r for page in src.query(conn, 'SELECT "Name", "Blob" FROM "T" ORDER BY "N"') for r in page]
    (name, blob), (cp1252, _) = rows
    assert type(name) is src.Raw and name == "J\u00fcrgen".encode()
    assert text(name, "user", "utf-8") == "J\u00fcrgen"
    assert type(blob) is src.Binary and blob == b"\x00\x01\xff"
    with pytest.raises(Bad, match="binary, not text"):
        text(blob, "user", "utf-8")
    with pytest.raises(Bad, match="cp1252"):
        text(cp1252, "document", "utf-8")
