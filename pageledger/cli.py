"""The `pageledger` command: run the server, manage the database, projections and tokens."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from uuid import UUID

from adapters.stores import StoreConfigError
from pageledger import logs
from adapters.private_files import PRIVATE_FILE, make_private_directory, restrict_if_present
from pageledger.settings import Settings, SettingsError
from domain.printers import CODE_MODES

log = logging.getLogger("pageledger")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.load(args.config, database_url=getattr(args, "database_url", None),
                                 data_dir=getattr(args, "data_dir", None))
    except SettingsError as exc:
        print(f"pageledger: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        if not getattr(args, "creates_database", False):
            require_existing_database(settings)
        return int(args.func(settings, args) or 0)
    except (SettingsError, StoreConfigError) as exc:
        print(f"pageledger: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def require_existing_database(settings: Settings) -> None:
    """Refuse to work on a database that is not there: run from the wrong directory, a command
    would otherwise make a new, empty one and "succeed" against it."""
    from adapters.stores import database_exists

    if not database_exists(settings.resolved_database_url):
        raise SettingsError(missing_database_message(settings))


def missing_database_message(settings: Settings) -> str:
    from adapters.stores import describe_database

    where = describe_database(settings.resolved_database_url)
    if settings.database_url:
        found = "from --database-url, PAGELEDGER_DATABASE_URL or the config file"
    else:
        found = f"in the data directory {settings.data_dir}"
        if not settings.data_dir.is_absolute():
            found += f", relative to the current directory {Path.cwd()}"
    return (f"no PageLedger database at {where} ({found}); nothing was created.\n"
            "  Point at the right one with --data-dir DIR or PAGELEDGER_DATA_DIR (the directory holding "
            "pageledger.db),\n  or --database-url URL or PAGELEDGER_DATABASE_URL (sqlite:///FILE or "
            "postgresql://...),\n  or a config file: --config FILE or PAGELEDGER_CONFIG.\n"
            "  To start a new one: pageledger db create, or pageledger up or serve (which also fill an "
            "empty PostgreSQL database).")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pageledger", description="PageLedger print accounting server")
    p.add_argument("--config", help="TOML config file (also PAGELEDGER_CONFIG)")
    p.add_argument("--database-url", help="sqlite:///FILE or postgresql://... (also PAGELEDGER_DATABASE_URL)")
    p.add_argument("--data-dir", help="where the embedded database and spool live (default ./var)")
    sub = p.add_subparsers(metavar="COMMAND")

    up = sub.add_parser("up", help="run everything on this host (embedded SQLite, no Redis needed)")
    up.add_argument("--port", type=int)
    up.add_argument("--https-port", type=int, help="HTTPS port (default 443 else 6321 when --port is not given; "
                                                   "-1: no HTTPS)")
    up.set_defaults(func=cmd_up, creates_database=True)

    serve = sub.add_parser("serve", help="run the web server (gunicorn)")
    serve.add_argument("--port", type=int)
    serve.add_argument("--https-port", type=int, help="also serve HTTPS on this port (or PAGELEDGER_HTTPS_PORT)")
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--threads", type=int, default=8)
    serve.add_argument("--role", choices=("all", "services"), default="all")
    serve.add_argument("--no-projections", action="store_true", help="leave projections to another node")
    serve.set_defaults(func=cmd_serve, creates_database=True)

    db = sub.add_parser("db", help="create or upgrade the database").add_subparsers(metavar="ACTION")
    create = db.add_parser("create", help="create the database and its tables")
    create.add_argument("--name", help="PostgreSQL database name (default: the URL's)")
    create.add_argument("--overwrite", action="store_true", help="drop an existing database first")
    create.set_defaults(func=cmd_db_create, creates_database=True)
    db.add_parser("upgrade", help="bring the read-model schema up to date").set_defaults(func=cmd_db_upgrade)

    proj = sub.add_parser("projections", help="inspect or rebuild read models").add_subparsers(metavar="ACTION")
    proj.add_parser("status", help="position of each projection and the head of the log").set_defaults(
        func=cmd_projections_status)
    rebuild = proj.add_parser("rebuild", help="empty a projection and replay the event log into it")
    rebuild.add_argument("names", nargs="*", help="projections to rebuild (default: all)")
    rebuild.set_defaults(func=cmd_projections_rebuild)
    repair = proj.add_parser("repair", help="list projections stopped at an event they cannot apply; "
                                            "--skip NAME --event N lets one pass over that event")
    repair.add_argument("--skip", metavar="NAME", help="the projection that is to skip an event")
    repair.add_argument("--event", type=int, metavar="N", help="position (notification id) of the event to skip")
    repair.add_argument("--reason", default="", help="why (kept with the decision)")
    repair.set_defaults(func=cmd_projections_repair)

    tokens = sub.add_parser("tokens", help="issue, list or revoke access tokens").add_subparsers(metavar="ACTION")
    issue = tokens.add_parser("issue", help="issue a token and print its secret once")
    issue.add_argument("--role", required=True, choices=("admin", "auditor", "user", "agent"))
    issue.add_argument("--name", required=True, help="who or what holds it (print server, person)")
    issue.add_argument("--subject", default="", help="the login a 'user' token acts as (default: --name)")
    issue.set_defaults(func=cmd_tokens_issue)
    tokens.add_parser("list", help="list tokens (never their secrets)").set_defaults(func=cmd_tokens_list)
    revoke = tokens.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=cmd_tokens_revoke)

    printers = sub.add_parser("printers", help="printer settings").add_subparsers(metavar="ACTION")
    cost = printers.add_parser("set-cost", help="put a cost schedule in force on a printer")
    cost.add_argument("printer")
    cost.add_argument("--mono", required=True, help="price per mono page, e.g. 0.05")
    cost.add_argument("--colour", required=True, help="price per colour page, e.g. 0.25")
    cost.add_argument("--duplex-discount", type=int, default=0, help="percent off duplex jobs")
    cost.add_argument("--paper", action="append", default=[], metavar="SIZE=MONO,COLOUR",
                      help="prices for one paper size, e.g. A3=0.10,0.50 (repeatable)")
    cost.set_defaults(func=cmd_printers_set_cost)
    secure = printers.add_parser("secure", help="hold this printer's jobs until their owner releases them")
    secure.add_argument("printer")
    secure.add_argument("state", choices=("on", "off"))
    secure.set_defaults(func=cmd_printers_secure)

    site = sub.add_parser("settings", help="site settings (time zone, privacy, ...)").add_subparsers(metavar="ACTION")
    site.add_parser("show", help="every setting with its value").set_defaults(func=cmd_settings_show)
    change = site.add_parser("set", help="change one setting (recorded with its old value and by whom)")
    change.add_argument("field")
    change.add_argument("value")
    change.set_defaults(func=cmd_settings_set)
    release = printers.add_parser("release", help="a secure queue's release settings (each change is an event)")
    release.add_argument("printer")
    release.add_argument("--hold-hours", type=float, help="held jobs expire after this long (default 4)")
    release.add_argument("--code-mode", choices=CODE_MODES, help="release codes: none, predefined (the user's "
                                                                 "PIN), generated (on print), entered (lp -o release-code=)")
    release.add_argument("--code-length", type=int, help="digits of a generated code (4-12)")
    release.add_argument("--group", help="printer group for pull printing (\"\" for none)")
    release.add_argument("--card-reader", metavar="HOST:PORT", help="network card reader at this printer (\"\" for none)")
    release.add_argument("--card-format", choices=("dec", "hex", "wiegand26"), default="dec")
    release.add_argument("--card-reverse-bytes", action="store_true")
    release.add_argument("--card-regex", default="")
    release.add_argument("--card-strip-prefix", default="")
    release.add_argument("--card-strip-suffix", default="")
    release.set_defaults(func=cmd_printers_release)

    held = sub.add_parser("held", help="held jobs: expire those due, sweep orphaned spool files").add_subparsers(
        metavar="ACTION")
    held.add_parser("expire", help="expire the held jobs whose hold time is over").set_defaults(func=cmd_held_expire)
    held.add_parser("sweep", help="remove spool files no held job refers to").set_defaults(func=cmd_held_sweep)

    rs = sub.add_parser("release-service", help="print released jobs through this host's CUPS")
    rs.add_argument("--cups-server", default="", help="host:port of cupsd (default: the local one)")
    rs.add_argument("--services-url", default="", help="the server (default: this host's)")
    rs.add_argument("--state-dir", default="", help="its journal (default: <data dir>/release-service)")
    rs.set_defaults(func=cmd_release_service)

    from pageledger.identity_cli import add_identity_commands

    add_identity_commands(sub)

    from pageledger.audit_cli import add_audit_commands

    add_audit_commands(sub)
    from pageledger.reports_cli import add_report_commands

    add_report_commands(sub)
    return p


def _runtime(settings: Settings, migrate: bool = True):
    from pageledger.bootstrap import build_runtime

    return build_runtime(settings, migrate=migrate)


# Personal data and the keys that protect it, kept in the data directory beside the database.
PRIVATE_DATA_FILES = ("session.key", "pin.key", "privacy.key", "directory.json", "first-tokens.json", "setup-code",
                      "tls-key.pem")


def make_data_directory_private(data_dir: Path) -> None:
    """The data directory and its spool 0700, the private files in it 0600, whatever the umask,
    also when an older version or an admin left them with looser modes. (The database file is
    made 0600 where it is opened, in adapters.stores.)"""
    make_private_directory(data_dir)
    make_private_directory(data_dir / "spool")
    for name in PRIVATE_DATA_FILES:
        restrict_if_present(data_dir / name, PRIVATE_FILE)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from pageledger.server import PageLedgerServer, choose_https_port, choose_port

    make_data_directory_private(settings.data_dir)
    with _runtime(settings) as runtime:
        runtime.catch_up()
        _bootstrap_tokens(runtime)
        _install_trial_on_first_start(runtime)
        _setup_code_until_set_up(runtime)
    automatic = not (args.port or settings.port)
    port = choose_port(settings, args.port)
    https_port, certificate = _https(settings, choose_https_port(settings, args.https_port, automatic))
    print(f"PageLedger is listening on {base_url(settings.host, port)}  (data in {settings.data_dir.resolve()})",
          flush=True)
    release_service = start_release_service(settings, port)
    try:
        PageLedgerServer(settings, port, workers=2, threads=8, projections="process", https_port=https_port,
                         certificate=certificate).run()
    finally:
        if release_service is not None:
            release_service.terminate()
            release_service.wait(timeout=10)
    return 0


def _https(settings: Settings, https_port: int | None):
    """The certificate for the HTTPS listener (the admin's, or a self-signed one made now), said
    on the console with its fingerprint; (None, None) when HTTPS is off."""
    from adapters.tls import CertificateError, server_certificate

    if https_port is None:
        print("HTTPS is off (an explicit --port without --https-port): the console needs HTTPS for its "
              "cookies from other hosts; set --https-port or PAGELEDGER_HTTPS_PORT.", flush=True)
        return None, None
    try:
        certificate = server_certificate(settings.data_dir, settings.tls_cert_file, settings.tls_key_file)
    except CertificateError as exc:
        raise SystemExit(str(exc)) from None
    kind = ("a self-signed certificate made now" if certificate.created else
            "its self-signed certificate" if certificate.self_signed else "the configured certificate")
    print(f"HTTPS (the web console) on {base_url(settings.host, https_port, 'https')} with {kind} "
          f"({certificate.cert_file.resolve()}),\n  SHA-256 fingerprint {certificate.fingerprint}", flush=True)
    return https_port, certificate


def base_url(host: str, port: int, scheme: str = "http") -> str:
    """The URL a person on this host reaches the server at, without a trailing slash (so that
    `$PL/api/v1/jobs` works): a wildcard address is localhost, port 80 goes without saying."""
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"


def _bootstrap_tokens(runtime) -> None:
    """First start: issue an admin and an agent token into a private file, so the server can be used."""
    from projections.access_tokens import list_tokens

    with runtime.reader.connect() as conn:
        if list_tokens(conn):
            return
    admin_id, admin = runtime.issue_token(name="first-admin", role="admin")
    agent_id, agent = runtime.issue_token(name="first-agent", role="agent")
    runtime.catch_up()
    path = make_private_directory(runtime.settings.data_dir) / "first-tokens.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), PRIVATE_FILE)  # a file left from before keeps its mode through O_TRUNC
        json.dump({"admin_token": admin, "agent_token": agent,
                   "admin_token_id": str(admin_id), "agent_token_id": str(agent_id)}, f, indent=2)
    print(f"First start: an admin and an agent token were written to {path.resolve()} (readable by you only).",
          flush=True)


def _install_trial_on_first_start(runtime) -> None:
    """The installation's first start is when its 15-day trial begins (setup may activate a key)."""
    licensing = runtime.licensing
    if licensing.get() is None:
        licensing.install_trial()
        runtime.catch_up()
        print("First start: the 15-day, 5-user trial licence is installed.", flush=True)


def _setup_code_until_set_up(runtime) -> None:
    """Until setup is complete the wizard needs a one-time code: print it here, on the console
    of whoever started the server, and never in the logs."""
    if runtime.is_set_up():
        runtime.setup_code.remove()
        return
    code = runtime.setup_code.ensure()
    print(f"Setup is not complete. The setup wizard (/Setup/NetworkSetup) asks for this one-time setup code:\n"
          f"    {code}\n  (also in {runtime.setup_code.path.resolve()}, readable by you only; it is removed "
          "once setup is complete)", flush=True)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from pageledger.server import PageLedgerServer

    make_data_directory_private(settings.data_dir)
    with _runtime(settings) as runtime:  # creates or upgrades the schema once, before the workers start
        _install_trial_on_first_start(runtime)
        _setup_code_until_set_up(runtime)
    from pageledger.server import choose_https_port

    port = args.port or settings.port or 6320
    https_port, certificate = (None, None)
    wanted = choose_https_port(settings, args.https_port, http_port_automatic=False)
    if wanted is not None:
        https_port, certificate = _https(settings, wanted)
    print(f"PageLedger ({args.role}) is listening on {base_url(settings.host, port)}", flush=True)
    PageLedgerServer(settings, port, workers=args.workers, threads=args.threads, role=args.role,
                     projections="none" if args.no_projections else "process", https_port=https_port,
                     certificate=certificate).run()
    return 0


def cmd_db_create(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.database import create_database
    from adapters.stores import is_postgres

    if not is_postgres(settings.resolved_database_url):  # the data directory holds the database
        make_data_directory_private(settings.data_dir)
    url = create_database(settings.resolved_database_url, name=args.name, overwrite=args.overwrite)
    _runtime(Settings.load(args.config, database_url=url, data_dir=settings.data_dir)).close()
    print(f"database ready: {url.split('@')[-1]}")
    return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    import migrations

    with _runtime(settings, migrate=False) as runtime:
        migrations.upgrade(runtime.writer)
        print(f"read-model schema at revision {migrations.current_revision(runtime.writer)}")
    return 0


def cmd_projections_status(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        head = max((f.head() for f in runtime.followers.values()), default=0)
        print(f"event log head: {head}")
        for name, f in runtime.followers.items():
            f.ensure_tracking_row()
            print(f"{name:<16} position {f.position():>10}")
    return 0


def cmd_projections_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        unknown = set(args.names) - set(runtime.followers)
        if unknown:
            print(f"pageledger: unknown projection(s): {', '.join(sorted(unknown))}; "
                  f"known: {', '.join(runtime.followers)}", file=sys.stderr)
            return 2
        status = 0
        # All of them (the default) are rebuilt in one pass over the log.
        followers = ([runtime.followers[n] for n in args.names] if args.names
                     else [runtime.all_together(batch_size=5000)])
        for follower in followers:
            name = ", ".join(follower.names)
            started = time.perf_counter()
            last_report = [0.0]

            def progress(pos: int, head: int, name: str = name) -> None:
                now = time.perf_counter()
                if now - last_report[0] >= 1.0 or pos >= head:
                    last_report[0] = now
                    pct = 100.0 * pos / head if head else 100.0
                    print(f"  {name}: {pos:,}/{head:,} events ({pct:.0f}%)", file=sys.stderr, flush=True)

            n = follower.rebuild(progress)
            secs = time.perf_counter() - started
            print(f"rebuilt {name}: {n:,} events in {secs:.1f}s ({n / secs if secs else 0:,.0f} events/s)")
            for failed, f in sorted(follower.failures.items()):
                print(f"pageledger: projection {failed} stopped at event {f.position} ({f.error}); "
                      "see `pageledger projections repair`", file=sys.stderr)
                status = 1
    return status


def cmd_projections_repair(settings: Settings, args: argparse.Namespace) -> int:
    """Show the failed projections and the skips decided before; with --skip/--event, record
    that one projection passes over one event (the event stays in the log; the runner goes on
    within a poll)."""
    from domain.units import iso
    from projections.follower import projection_failure_rows, projection_positions, projection_skip_rows, skip_event

    if (args.skip is None) != (args.event is None):
        print("pageledger: --skip NAME and --event N go together", file=sys.stderr)
        return 2
    with _runtime(settings) as runtime:
        if args.skip is not None:
            if args.skip not in runtime.followers:
                print(f"pageledger: unknown projection {args.skip!r}; known: {', '.join(runtime.followers)}",
                      file=sys.stderr)
                return 2
            with runtime.writer.connect() as conn:
                position = projection_positions(conn).get(args.skip, 0)
            head = runtime.followers[args.skip].head()
            if not position < args.event <= head:
                print(f"pageledger: projection {args.skip} stands at {position} and the log ends at {head}: "
                      f"there is no event {args.event} still to apply", file=sys.stderr)
                return 2
            with runtime.writer.begin() as conn:
                skip_event(conn, args.skip, args.event, args.reason, time.time_ns() // 1000)
            log.warning("projection %s will skip the event at position %d (the event stays in the log)%s",
                        args.skip, args.event, f": {args.reason}" if args.reason else "",
                        extra={"projection": args.skip, "position": args.event, "reason": args.reason})
            print(f"{args.skip} will skip event {args.event}; the runner goes on from there")
            return 0
        with runtime.reader.connect() as conn:
            failures = projection_failure_rows(conn)
            skips = projection_skip_rows(conn)
    if not failures:
        print("no projection has failed")
    for name, f in sorted(failures.items()):
        print(f"FAILED {name:<16} at event {f['position']} since {iso(f['first_failed_at'])} "
              f"({f['attempts']} attempts): {f['error']}")
        print(f"  to pass over it: pageledger projections repair --skip {name} --event {f['position']}")
    for k in skips:
        print(f"skipped {k['name']:<15} event {k['position']} on {iso(k['skipped_at'])}"
              + (f": {k['reason']}" if k["reason"] else "") + (f" (it failed with {k['error']})" if k["error"] else ""))
    return 1 if failures else 0


def cmd_tokens_issue(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        token_id, secret = runtime.issue_token(name=args.name, role=args.role, subject=args.subject)
        runtime.catch_up()
    log.info("issued a %s token named %s (id %s)", args.role, args.name, token_id)
    print(json.dumps({"token_id": str(token_id), "token": secret}))
    return 0


def cmd_tokens_list(settings: Settings, args: argparse.Namespace) -> int:
    from projections.access_tokens import list_tokens

    with _runtime(settings) as runtime:
        runtime.catch_up()
        with runtime.reader.connect() as conn:
            for t in list_tokens(conn):
                print(f"{t.token_id}  {t.role:<8} {t.name:<24} {'revoked' if t.revoked else 'active'}")
    return 0


def cmd_tokens_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from eventsourcing.application import AggregateNotFoundError

    try:
        token_id = UUID(args.token_id)
    except ValueError:
        print(f"pageledger: {args.token_id!r} is not a token id", file=sys.stderr)
        return 2
    with _runtime(settings) as runtime:
        try:
            runtime.revoke_token(token_id)
        except AggregateNotFoundError:
            print(f"pageledger: no token with id {token_id}", file=sys.stderr)
            return 1
        runtime.catch_up()
    log.info("revoked token %s", token_id)
    return 0


def cmd_printers_set_cost(settings: Settings, args: argparse.Namespace) -> int:
    from domain.costs import CostSchedule
    from domain.units import parse_money

    try:
        by_paper = {}
        for spec in args.paper:
            size, _, prices = spec.partition("=")
            mono, _, colour = prices.partition(",")
            if not size or not colour:
                raise ValueError(f"--paper {spec!r}: expected SIZE=MONO,COLOUR")
            by_paper[size] = (parse_money(mono), parse_money(colour))
        schedule = CostSchedule(mono_page=parse_money(args.mono), colour_page=parse_money(args.colour),
                                by_paper=by_paper, duplex_discount_pct=args.duplex_discount)
    except ValueError as exc:
        print(f"pageledger: {exc}", file=sys.stderr)
        return 2
    with _runtime(settings) as runtime:
        version = runtime.set_cost_schedule(args.printer, schedule, by="cli")
    print(f"cost schedule version {version} in force on {args.printer}")
    return 0


def cmd_printers_secure(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        runtime.set_secure_hold(args.printer, args.state == "on", by="cli")
    print(f"{args.printer}: secure hold {args.state}")
    return 0


def cmd_settings_show(settings: Settings, args: argparse.Namespace) -> int:
    from domain.site_settings import FIELDS, shown_value

    with _runtime(settings) as runtime:
        values = runtime.site_settings.values()
    for name, spec in FIELDS.items():
        print(f"{name} = {shown_value(name, values[name])!r}    # {spec.description}")
    return 0


def cmd_settings_set(settings: Settings, args: argparse.Namespace) -> int:
    from domain.site_settings import FIELDS, SettingError, check_value, shown_value

    spec = FIELDS.get(args.field)
    if spec is None:
        print(f"pageledger: no setting {args.field!r}; `pageledger settings show` lists them", file=sys.stderr)
        return 2
    value: object = args.value
    try:
        if spec.kind == "integer":
            value = int(args.value)
        elif spec.kind == "number":
            value = float(args.value)
        elif spec.kind == "boolean":
            value = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}[args.value.lower()]
    except (ValueError, KeyError):
        print(f"pageledger: {args.field}: {args.value!r} is not a {spec.kind} value", file=sys.stderr)
        return 2
    try:
        check_value(args.field, value)  # before the database is opened: a refusal writes nothing
    except SettingError as exc:
        print(f"pageledger: {exc.field}: {exc}", file=sys.stderr)
        return 2
    with _runtime(settings) as runtime:
        result = runtime.change_setting(args.field, value, by="cli")
    print(f"{args.field} = {shown_value(args.field, result.new)!r}" + ("" if result.changed else " (unchanged)"))
    return 0


def cmd_printers_release(settings: Settings, args: argparse.Namespace) -> int:
    from commands.printers import ReleaseSettings
    from commands.validation import InvalidRequest

    reader = None
    if args.card_reader is not None:
        host, _, port = args.card_reader.rpartition(":")
        if args.card_reader and (not host or not port.isdigit()):
            print("--card-reader: HOST:PORT expected", file=sys.stderr)
            return 2
        reader = {} if not args.card_reader else {
            "host": host, "port": int(port), "format": args.card_format, "reverse_bytes": args.card_reverse_bytes,
            "regex": args.card_regex, "strip_prefix": args.card_strip_prefix, "strip_suffix": args.card_strip_suffix,
            "output": "dec"}
    wanted = ReleaseSettings(hold_seconds=None if args.hold_hours is None else int(args.hold_hours * 3600),
                             code_mode=args.code_mode, code_length=args.code_length, group=args.group,
                             card_reader=reader)
    with _runtime(settings) as runtime:
        try:
            p = runtime.set_release_settings(args.printer, wanted, by="cli")
        except InvalidRequest as exc:
            for name, messages in exc.errors.items():
                print(f"{name}: {' '.join(messages)}", file=sys.stderr)
            return 2
    print(f"{args.printer}: hold {p.hold_seconds / 3600:g} h, codes {p.code_mode}"
          f"{' (' + str(p.code_length) + ' digits)' if p.code_mode == 'generated' else ''}, "
          f"group {p.group or 'none'}, card reader "
          f"{p.card_reader['host'] + ':' + str(p.card_reader['port']) if p.card_reader else 'none'}")
    return 0


def cmd_held_expire(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        runtime.catch_up()
        n = runtime.release_housekeeping.expire_due()
    print(f"{n} held jobs expired")
    return 0


def cmd_held_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from workers.release_housekeeping import sweep_orphaned_spools

    with _runtime(settings) as runtime:
        runtime.catch_up()
        report = sweep_orphaned_spools(runtime.reader, runtime.spool)
    print(f"{report.files} spool files, {report.removed} orphaned removed ({report.bytes_removed} bytes)")
    return 0


def release_service_argv(settings: Settings, cups_server: str, services_url: str, state_dir: str) -> list[str]:
    """The release service is the agent's (it talks to the server over HTTP only), started as a
    process of its own: `python -m agent.release_service`."""
    return [sys.executable, "-m", "agent.release_service", "--state-dir",
            state_dir or str(settings.data_dir / "release-service"),
            "--cups-server", "" if cups_server in ("", "localhost") else cups_server,
            "--services-url", services_url]


def _release_token(settings: Settings) -> str:
    token = os.environ.get("PAGELEDGER_RELEASE_TOKEN", "")
    if token:
        return token
    try:
        return json.loads((settings.data_dir / "first-tokens.json").read_text())["agent_token"]
    except (OSError, ValueError, KeyError):
        return ""


def cmd_release_service(settings: Settings, args: argparse.Namespace) -> int:
    token = _release_token(settings)
    if not token:
        print("release-service: no agent token: set PAGELEDGER_RELEASE_TOKEN (pageledger tokens issue --role agent)",
              file=sys.stderr)
        return 2
    url = args.services_url or base_url("127.0.0.1", settings.port or 6320)
    argv = release_service_argv(settings, args.cups_server, url, args.state_dir)
    os.execve(sys.executable, argv, {**os.environ, "PAGELEDGER_RELEASE_TOKEN": token})
    return 0  # not reached


def start_release_service(settings: Settings, port: int):
    """`up` with release_cups set: the release service beside the web server (stopped with it)."""
    import subprocess

    if not settings.release_cups:
        return None
    token = _release_token(settings)
    argv = release_service_argv(settings, settings.release_cups, base_url("127.0.0.1", port), "")
    print(f"release service: printing released jobs through CUPS {settings.release_cups}", flush=True)
    return subprocess.Popen(argv, env={**os.environ, "PAGELEDGER_RELEASE_TOKEN": token})


if __name__ == "__main__":
    sys.exit(main())
