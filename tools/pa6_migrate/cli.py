"""`pageledger-pa6-migrate`: inspect a legacy database, then migrate and reconcile it.

    pageledger-pa6-migrate inspect --dsn "DRIVER={...};..."            tables, columns, rows, a mapping
    pageledger-pa6-migrate migrate --dsn ... --mapping pa6-default --site-zone Europe/Berlin [--dry-run]
    pageledger-pa6-migrate reconcile --dsn ... --mapping ... --site-zone ...  (again, after a migration)

The connection string may come from the PA6_DSN environment variable instead of --dsn, which
keeps its password out of the process list. Exit status: 0 done and reconciled, 1 failed,
2 bad usage, 3 stopped by --max-rejects, 4 reconciliation differs.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from pageledger import logs
from adapters.stores import StoreConfigError
from pageledger.bootstrap import Runtime, build_runtime
from pageledger.cli import require_existing_database
from pageledger.settings import Settings, SettingsError
from tools.pa6_migrate import reconcile as rec
from tools.pa6_migrate import source as src
from tools.pa6_migrate.inspect import suggest_mapping
from tools.pa6_migrate.mapping import SHIPPED, Mapping, MappingError, load_mapping
from commands.conflicts import KeptConflicting
from tools.pa6_migrate.replay import EXISTING_PRINTERS, ExistingPrinters, MigrationMismatch, Migrator, Options, \
    Target, TooManyRejects
from tools.pa6_migrate.rows import SiteZone

log = logging.getLogger("pageledger.pa6_migrate")

EXIT_FAILED, EXIT_USAGE, EXIT_REJECTS, EXIT_MISMATCH = 1, 2, 3, 4


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    logs.configure(args.log_level)
    dsn = args.dsn or os.environ.get("PA6_DSN", "")
    if not dsn:
        print("pageledger-pa6-migrate: give the legacy database's ODBC connection string with --dsn or PA6_DSN",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args, dsn) or 0)
    except (MappingError, SettingsError, StoreConfigError, MigrationMismatch, ExistingPrinters, ValueError) as exc:
        print(f"pageledger-pa6-migrate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (src.SourceError, KeptConflicting) as exc:
        log.error("%s", exc)
        return EXIT_FAILED
    except TooManyRejects as exc:
        log.error("%s", exc)
        return EXIT_REJECTS
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pageledger-pa6-migrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers()

    inspect = sub.add_parser("inspect", help="list the legacy tables, columns and row counts; suggest a mapping")
    inspect.add_argument("--dsn", help="ODBC connection string (else PA6_DSN)")
    inspect.add_argument("--write-mapping", type=Path, help="write the suggested mapping to this TOML file")
    inspect.set_defaults(func=cmd_inspect)

    for name, func, text in (("migrate", cmd_migrate, "replay the legacy database as PageLedger events"),
                             ("reconcile", cmd_reconcile, "compare legacy totals with PageLedger's, per month")):
        c = sub.add_parser(name, help=text)
        c.add_argument("--dsn", help="ODBC connection string (else PA6_DSN)")
        c.add_argument("--mapping", required=True,
                       help=f"a mapping TOML file, or a shipped one: {', '.join(SHIPPED)}")
        c.add_argument("--site-zone", required=True, help="the site's time zone, e.g. Europe/Berlin: legacy "
                                                           "times carry none")
        c.add_argument("--ambiguous", choices=("earlier", "later"), default="earlier",
                       help="a time in the hour the clocks went back: its first (summer-time) or second occurrence")
        c.add_argument("--nonexistent", choices=("forward", "reject"), default="forward",
                       help="a time in the hour the clocks skipped: read with the offset before the change, or "
                            "set the row aside")
        c.add_argument("--name", default="pa6", help="this migration's name (its checkpoint and job ids)")
        c.add_argument("--reconciliation", type=Path, default=Path("pa6-reconciliation.csv"))
        c.add_argument("--rejects", type=Path, default=Path("pa6-rejects.csv"))
        c.add_argument("--config", help="PageLedger's TOML settings file")
        c.add_argument("--database-url", help="PageLedger's database (else from its settings)")
        c.add_argument("--data-dir", type=Path)
        c.set_defaults(func=func)
        if name == "migrate":
            c.add_argument("--dry-run", action="store_true", help="check, count rejects and reconcile; write nothing")
            c.add_argument("--batch", type=int, default=5000, help="jobs a transaction (default 5000)")
            c.add_argument("--max-rejects", type=int, default=1000,
                           help="stop when more rows than this are set aside (default 1000)")
            c.add_argument("--existing-printers", choices=EXISTING_PRINTERS, default="refuse",
                           help="legacy cost settings of a printer PageLedger has already: refuse to run (default), "
                                "keep-price (record them, keep its current price) or take-legacy-price (the newest "
                                "legacy schedule becomes its price)")
            c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                           help="a progress bar (default: when stderr is a terminal)")
    return p


def cmd_inspect(args: argparse.Namespace, dsn: str) -> int:
    conn = src.connect(dsn)
    tables = src.describe(conn)
    for t in tables:
        rows = "?" if t.rows is None else f"{t.rows:,}"
        print(f"{'.'.join(p for p in (t.schema, t.name) if p)}  ({rows} rows)")
        for c in t.columns:
            print(f"    {c.name:<32} {c.type_name}{'' if c.nullable else '  NOT NULL'}")
    suggestion = suggest_mapping(tables)
    if args.write_mapping:
        args.write_mapping.write_text(suggestion, encoding="utf-8")
        print(f"\nsuggested mapping written to {args.write_mapping}: check every entry marked CHECK")
    else:
        print("\n# suggested mapping (check every entry marked CHECK):\n" + suggestion)
    return 0


def _setup(args: argparse.Namespace, dsn: str) -> tuple[Mapping, SiteZone, object, Settings]:
    mapping = load_mapping(args.mapping)
    zone = SiteZone(args.site_zone, ambiguous=args.ambiguous, nonexistent=args.nonexistent)
    settings = Settings.load(args.config, database_url=args.database_url, data_dir=args.data_dir)
    # Never into a database made up on the spot (a wrong directory, a typo in the URL).
    require_existing_database(settings)
    log.info("legacy database %s, mapping %s", src.redacted(dsn), mapping.path,
             extra={"source": src.redacted(dsn), "mapping": mapping.path})
    return mapping, zone, src.connect(dsn), settings


def _target(runtime: Runtime) -> Target:
    return Target(app=runtime.app, import_users=runtime.import_legacy_users,
                  replay_schedules=runtime.replay_legacy_schedules, record_jobs=runtime.record_migrated_jobs,
                  directory_source=runtime.directory().source, clock=runtime.clock)  # type: ignore[arg-type]


def cmd_migrate(args: argparse.Namespace, dsn: str) -> int:
    mapping, zone, conn, settings = _setup(args, dsn)
    if args.batch < 1 or args.max_rejects < 0:
        raise ValueError("--batch must be at least 1 and --max-rejects at least 0")
    with build_runtime(settings) as runtime:
        options = Options(name=args.name, batch=args.batch, max_rejects=args.max_rejects, dry_run=args.dry_run,
                          progress=args.progress, existing_printers=args.existing_printers)
        outcome = Migrator(conn, mapping, zone, _target(runtime), options).run()
        if args.dry_run:
            pageledger, outside = rec.accepted_totals(outcome.accepted), rec.Totals()
        else:
            catch_up(runtime)
            pageledger = None
            outside = None
        return _report(args, conn, mapping, zone, runtime, outcome.rejects, pageledger, outside)


def cmd_reconcile(args: argparse.Namespace, dsn: str) -> int:
    mapping, zone, conn, settings = _setup(args, dsn)
    with build_runtime(settings) as runtime:
        migration = Migrator(conn, mapping, zone, _target(runtime), Options(name=args.name))._load()
        if migration is None:
            raise ValueError(f"no migration named {args.name} has been run against this PageLedger database")
        catch_up(runtime)
        return _report(args, conn, mapping, zone, runtime, migration.rejects, None, None)


def catch_up(runtime: Runtime) -> None:
    """Bring the read models (what reports read) up to the head of the log, saying how far."""
    log.info("bringing PageLedger's reports up to date with the replayed jobs")
    started = last = time.monotonic()

    def progress(position: int, head: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 10:
            last = now
            log.info("reports: event %s of %s applied (%.0f s so far)", f"{position:,}", f"{head:,}", now - started,
                     extra={"position": position, "head": head})

    runtime.all_together().catch_up(progress)
    log.info("reports are up to date (%.1f s)", time.monotonic() - started)


def _report(args: argparse.Namespace, conn: object, mapping: Mapping, zone: SiteZone, runtime: Runtime,
            rejects: list, pageledger: dict | None, outside: rec.Totals | None) -> int:
    log.info("reconciling: reading every legacy job row's figures again")
    legacy = rec.legacy_totals(conn, mapping, zone)
    if pageledger is None:
        pageledger, outside = rec.pageledger_totals(runtime.reader, zone, list(legacy))
    result = rec.reconcile(legacy, pageledger, outside or rec.Totals(), rejects)
    result.write_csv(args.reconciliation)
    written = rec.write_rejects(args.rejects, rejects)
    print(result.table())
    total = result.total()
    log.info("reconciliation %s: %s legacy jobs, %s in PageLedger, %s set aside (listed in %s); per month in %s",
             "matches" if result.matches else "DIFFERS", f"{total.legacy.jobs:,}", f"{total.pageledger.jobs:,}",
             f"{written:,}", args.rejects, args.reconciliation,
             extra={"matches": result.matches, "legacy_jobs": total.legacy.jobs,
                    "pageledger_jobs": total.pageledger.jobs, "rejected": written})
    return 0 if result.matches else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
