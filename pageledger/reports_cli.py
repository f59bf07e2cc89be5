"""`pageledger reports ...` and `pageledger worker`: run a report, define, list and remove
scheduled reports, run the due ones now, and the background worker on Redis."""
from __future__ import annotations

import argparse
import json
import sys

from pageledger.settings import Settings


def add_report_commands(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("worker", help="the background worker on Redis (rq): scheduled reports, the daily "
                                           "licence notice and user sync")
    worker.add_argument("--burst", action="store_true", help="run what is queued and due now, then exit")
    worker.set_defaults(func=cmd_worker)

    reports = sub.add_parser("reports", help="run reports and schedule them").add_subparsers(metavar="ACTION")
    run = reports.add_parser("run", help="run one report and write it (JSON to the terminal by default)")
    run.add_argument("name")
    run.add_argument("--format", default="json", choices=("json", "csv", "xlsx", "pdf", "html"))
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="a report parameter, e.g. from=2026-11-01 (repeatable)")
    run.add_argument("--output", help="the file to write (needed for xlsx and pdf)")
    run.set_defaults(func=cmd_reports_run)

    schedule = reports.add_parser("schedule", help="define (or change) a scheduled report, e-mailed when due")
    schedule.add_argument("name")
    schedule.add_argument("--report", required=True)
    schedule.add_argument("--cron", required=True, help="five fields in the site's time zone, e.g. '0 7 * * 1'")
    schedule.add_argument("--to", action="append", default=[], required=True, metavar="ADDRESS",
                          help="a recipient (repeatable)")
    schedule.add_argument("--format", default="pdf")
    schedule.add_argument("--period", default="previous-day")
    schedule.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    schedule.set_defaults(func=cmd_reports_schedule)

    reports.add_parser("schedules", help="the scheduled reports and how their last run went").set_defaults(
        func=cmd_reports_schedules)
    unschedule = reports.add_parser("unschedule", help="remove a scheduled report")
    unschedule.add_argument("name")
    unschedule.set_defaults(func=cmd_reports_unschedule)
    reports.add_parser("run-due", help="run the scheduled reports that are due now, in this process").set_defaults(
        func=cmd_reports_run_due)


def _params(pairs: list[str]) -> dict[str, str] | None:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            print(f"pageledger: --param {pair!r}: write KEY=VALUE", file=sys.stderr)
            return None
        out[key] = value
    return out


def _runtime(settings: Settings):
    from pageledger.bootstrap import build_runtime

    return build_runtime(settings)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from pageledger.worker import run_worker

    return run_worker(settings, burst=args.burst)


def cmd_reports_run(settings: Settings, args: argparse.Namespace) -> int:
    from projections.report_formats import render, report_json
    from projections.report_period import ReportInputError, parse_parameters
    from projections.reports import CATALOGUE, iter_jobs, run_report

    params = _params(args.param)
    if params is None:
        return 2
    if args.name not in CATALOGUE:
        print(f"pageledger: no report {args.name!r}; the catalogue: {', '.join(CATALOGUE)}", file=sys.stderr)
        return 2
    if args.format in ("xlsx", "pdf") and not args.output:
        print(f"pageledger: --output FILE is needed for {args.format}", file=sys.stderr)
        return 2
    with _runtime(settings) as runtime:
        try:
            p = parse_parameters(params, site_timezone=str(runtime.site_settings["timezone"]), now=runtime.clock(),
                                 allowed=CATALOGUE[args.name].parameters)
            report = run_report(runtime.reader, args.name, p, runtime.report_sources)
        except ReportInputError as exc:
            for field, messages in exc.errors.items():
                print(f"pageledger: {field}: {' '.join(messages)}", file=sys.stderr)
            return 2
        if args.format == "json":
            pieces = iter([json.dumps(report_json(report), indent=2, default=str).encode() + b"\n"])
        else:
            privacy = str(runtime.report_sources.settings().get("document_names", "keep"))
            chunks = (lambda: iter_jobs(runtime.reader, p, privacy)) if args.name == "jobs" else None
            pieces = render(report, args.format, chunks)
        if args.output:
            with open(args.output, "wb") as f:
                for piece in pieces:
                    f.write(piece)
            print(f"{report.title} written to {args.output}")
        else:
            for piece in pieces:
                sys.stdout.buffer.write(piece)
    return 0


def cmd_reports_schedule(settings: Settings, args: argparse.Namespace) -> int:
    from commands.report_schedules import ScheduleDefinition
    from commands.validation import InvalidRequest

    params = _params(args.param)
    if params is None:
        return 2
    with _runtime(settings) as runtime:
        try:
            runtime.define_schedule(ScheduleDefinition(args.name, args.report, params, args.format, args.cron,
                                                       tuple(args.to), args.period), by="cli")
        except InvalidRequest as exc:
            for field, messages in exc.errors.items():
                print(f"pageledger: {field}: {' '.join(messages)}", file=sys.stderr)
            return 2
    print(f"scheduled report {args.name}: {args.report} as {args.format}, cron {args.cron!r}, to {', '.join(args.to)}")
    return 0


def cmd_reports_schedules(settings: Settings, args: argparse.Namespace) -> int:
    from domain.units import iso
    from projections.report_schedules import list_schedules

    with _runtime(settings) as runtime:
        runtime.catch_up()
        with runtime.reader.connect() as conn:
            rows = list_schedules(conn)
    for r in rows:
        last = f"last run {iso(r.last_due)}: {r.last_outcome}" if r.last_due else "not run yet"
        if r.last_error:
            last += f" ({r.last_error})"
        print(f"{r.name}: {r.report} as {r.format}, cron {r.cron!r}, {r.period}, to {', '.join(r.recipients) or '-'}; "
              f"{last}")
    return 0


def cmd_reports_unschedule(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        if not runtime.remove_schedule(args.name, by="cli"):
            print(f"pageledger: no scheduled report {args.name!r}", file=sys.stderr)
            return 1
    print(f"scheduled report {args.name} removed")
    return 0


def cmd_reports_run_due(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        runtime.catch_up()
        done = runtime.scheduled_runs().tick()
    for name, outcome in done:
        print(f"{name}: {outcome}")
    if not done:
        print("nothing was due")
    return 1 if any(outcome == "failed" for _, outcome in done) else 0
