"""`pageledger audit ...` and `pageledger privacy ...`: replay, verify, the admin-change log
and a person's own history (docs/audit-privacy.md)."""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import date, datetime, time as day_time, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

from domain.units import day_iso, format_money, iso, to_micros
from pageledger.settings import Settings
from projections.admin_changes import AREAS
from projections.audit import AS_OF_REPORTS
from projections.erasure import UnknownPerson
from projections.usage_daily import GROUPS


def add_audit_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="replay and verify the event log; the admin-change log").add_subparsers(
        metavar="ACTION")
    as_of = audit.add_parser("as-of", help="figures as they stood at an instant, from the events recorded by then")
    as_of.add_argument("instant", help="ISO 8601 with offset (2026-01-31T23:59:59Z), or a date: the end of that "
                                       "day in the site's time zone")
    as_of.add_argument("--report", choices=AS_OF_REPORTS, default="usage",
                       help="any report of the catalogue (default usage: totals by --group-by)")
    as_of.add_argument("--group-by", choices=GROUPS, default="user")
    as_of.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a parameter of the report, as for `reports run` (repeatable)")
    as_of.add_argument("--json", action="store_true", help="JSON instead of a table (CSV for a report)")
    as_of.set_defaults(func=cmd_audit_as_of)
    audit.add_parser("verify", help="check the log's seals and rebuild every read model to compare it; "
                                    "exit 0 only when all verified").set_defaults(func=cmd_audit_verify)
    changes = audit.add_parser("changes", help="who changed which setting, cost, queue, user or licence, when, "
                                               "old and new values")
    changes.add_argument("--from", dest="since", help="ISO 8601 with offset, or a date (site time zone)")
    changes.add_argument("--to", dest="until", help="ISO 8601 with offset, or a date (site time zone), exclusive")
    changes.add_argument("--area", choices=sorted(set(AREAS.values())))
    changes.add_argument("--json", action="store_true")
    changes.set_defaults(func=cmd_audit_changes)

    privacy = sub.add_parser("privacy", help="erase a person's personal data (GDPR art. 17)").add_subparsers(
        metavar="ACTION")
    erase = privacy.add_parser("erase", help="make a person's document names and hosts unreadable for good "
                                             "(their key is deleted; totals stay)")
    erase.add_argument("user", help="the login")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.set_defaults(func=cmd_privacy_erase)


def parse_instant(text: str, zone: str, *, end_of_day: bool) -> int:
    """µs of an ISO 8601 instant with its offset, or of a date in the site's zone (its end when
    `end_of_day`, else its start). ValueError naming what is wrong otherwise."""
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) == 10:
        start = datetime.combine(day, day_time(), ZoneInfo(zone))
        return to_micros(start + timedelta(days=1)) - 1 if end_of_day else to_micros(start)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (2026-01-31T23:59:59Z) or a date (2026-01-31)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no offset: add Z or +01:00")
    return to_micros(moment)


def _progress(what: str) -> Callable[[int, int], None]:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 1.0 or done >= total:
            last[0] = now
            pct = 100.0 * done / total if total else 100.0
            print(f"  {what}: {done:,}/{total:,} events ({pct:.0f}%)", file=sys.stderr, flush=True)
    return report


def _runtime(settings: Settings) -> Any:
    from pageledger.bootstrap import build_runtime

    return build_runtime(settings)


def cmd_audit_as_of(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        try:
            instant = parse_instant(args.instant, str(runtime.site_settings["timezone"]), end_of_day=True)
        except ValueError as exc:
            print(f"pageledger: instant: {exc}", file=sys.stderr)
            return 2
        if args.report != "usage" or args.param:
            return _report_as_of(runtime, instant, args)
        started = time.perf_counter()
        totals, read = runtime.audit.usage_as_of(instant, args.group_by, progress=_progress("replaying"))
        secs = time.perf_counter() - started
    print(f"usage as of {iso(instant)}, from the events recorded by then ({read:,} events replayed in "
          f"{secs:.1f}s)", file=sys.stderr)
    rows = [{args.group_by: day_iso(int(t.key)) if args.group_by == "day" else t.key, "jobs": t.jobs,
             "impressions": t.pages, "sheets": t.sheets, "colour_impressions": t.colour_pages,
             "cost": format_money(t.cost)} for t in totals]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    out = csv.writer(sys.stdout, dialect="excel-tab")
    out.writerow([args.group_by, "jobs", "impressions", "sheets", "colour_impressions", "cost"])
    for row in rows:
        out.writerow(row.values())
    out.writerow(["total", sum(t.jobs for t in totals), sum(t.pages for t in totals),
                  sum(t.sheets for t in totals), sum(t.colour_pages for t in totals),
                  format_money(sum(t.cost for t in totals))])
    return 0


def _report_as_of(runtime: Any, instant: int, args: argparse.Namespace) -> int:
    """A catalogue report as of `instant`, as JSON or CSV on standard output."""
    from projections.report_formats import render, report_json
    from projections.report_period import ReportInputError, parse_parameters
    from projections.reports import CATALOGUE

    params: dict[str, str] = {}
    for pair in args.param:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            print(f"pageledger: --param {pair!r}: write KEY=VALUE", file=sys.stderr)
            return 2
        params[key] = value
    try:
        # Dates in the site's time zone as it stood at the instant, as every setting the report reads.
        p = parse_parameters(params, site_timezone=str(runtime.audit.settings_as_of(instant)["timezone"]), now=instant,
                             allowed=CATALOGUE[args.report].parameters)
    except ReportInputError as exc:
        for field, messages in exc.errors.items():
            print(f"pageledger: {field}: {' '.join(messages)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report, read = runtime.audit.report_as_of(instant, args.report, p, progress=_progress("replaying"))
    print(f"{report.title} as of {iso(instant)}, from the events recorded by then ({read:,} events replayed in "
          f"{time.perf_counter() - started:.1f}s)", file=sys.stderr)
    if args.json:
        print(json.dumps({**report_json(report), "as_of": iso(instant), "events_replayed": read}, indent=2,
                         default=str))
    else:
        for piece in render(report, "csv"):
            sys.stdout.buffer.write(piece)
    return 0


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        started = time.perf_counter()
        result = runtime.audit.verify(progress_log=lambda n: print(f"  seals: {n:,} events checked",
                                                                   file=sys.stderr, flush=True),
                                      progress_replay=_progress("rebuilding into scratch tables"))
        secs = time.perf_counter() - started
    seals = result.seals
    print(f"event log: {seals.events:,} events in {seals.seals:,} sealed batches; head digest "
          f"{seals.head_digest or '(none)'} (note it down: a later verify must find it again)")
    for finding in seals.findings:
        print(f"TAMPERED {finding.kind}: {finding.describe()}")
    for check in result.read_models.checks:
        state = "verified" if check.differences == 0 else f"{check.differences:,} differences"
        print(f"read model {check.name}: {check.rows:,} rows compared at position {check.position:,}: {state}")
        for diff in check.shown:
            print(f"  DIFFERENT {diff.describe()}")
        if check.differences > len(check.shown):
            print(f"  ... and {check.differences - len(check.shown):,} more")
    print(("all verified" if result.ok else "NOT verified") + f" in {secs:.1f}s")
    return 0 if result.ok else 1


def cmd_audit_changes(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        zone = str(runtime.site_settings["timezone"])
        try:
            since = parse_instant(args.since, zone, end_of_day=False) if args.since else None
            until = parse_instant(args.until, zone, end_of_day=False) if args.until else None
        except ValueError as exc:
            print(f"pageledger: --from/--to: {exc}", file=sys.stderr)
            return 2
        if since is not None and until is not None and until <= since:
            print("pageledger: --to: must be after --from", file=sys.stderr)
            return 2
        changes = list(runtime.audit.changes(since=since, until=until, area=args.area))
    if args.json:
        for c in changes:
            print(json.dumps({"at": c.at, "area": c.area, "subject": c.subject, "change": c.change,
                              "field": c.field, "old": c.old, "new": c.new, "by": c.by}, default=str))
        return 0
    out = csv.writer(sys.stdout, dialect="excel-tab")
    out.writerow(["at", "area", "subject", "change", "field", "old", "new", "by"])
    for c in changes:
        out.writerow([c.at, c.area, c.subject, c.change, c.field, json.dumps(c.old, default=str),
                      json.dumps(c.new, default=str), c.by])
    return 0


def cmd_privacy_erase(settings: Settings, args: argparse.Namespace) -> int:
    login = args.user.strip()
    if not login or len(login) > 255 or any(ord(c) < 32 for c in login):
        print("pageledger: user: not a login", file=sys.stderr)
        return 2
    if not args.yes:
        if not sys.stdin.isatty():
            print("pageledger: erasing cannot be undone: add --yes to confirm", file=sys.stderr)
            return 2
        if input(f"Erase {login!r} for good? Type the login again to confirm: ").strip() != login:
            print("pageledger: not confirmed; nothing erased", file=sys.stderr)
            return 1
    with _runtime(settings) as runtime:
        try:
            result = runtime.erase_person(login, progress=_progress("rebuilding jobs"))
        except UnknownPerson as exc:
            print(f"pageledger: user: {exc}; nothing erased", file=sys.stderr)
            return 1
    print(f"erased: now erased user #{result.number}; {result.jobs:,} jobs and {result.hosts:,} hosts show as "
          "erased, their totals stay")
    return 0
