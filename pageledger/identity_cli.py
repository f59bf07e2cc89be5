"""`pageledger users ...`, `pageledger licence ...` and `pageledger notices send`.

Each sub-command is thin: build the runtime, call one command or query, print, exit code 0
on success, 1 when the command refused (with the reason on stderr), 2 for bad usage.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pageledger.settings import Settings


def add_identity_commands(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="directory users").add_subparsers(metavar="ACTION")
    sync = users.add_parser("sync", help="import and update users from the configured directory")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.set_defaults(func=cmd_users_sync)
    users.add_parser("list", help="list users").set_defaults(func=cmd_users_list)

    licence = sub.add_parser("licence", help="the installation's licence").add_subparsers(metavar="ACTION")
    licence.add_parser("show", help="type, validity, expiry and seats").set_defaults(func=cmd_licence_show)
    activate = licence.add_parser("activate", help="activate online (--key) or via a licence file (--file)")
    how = activate.add_mutually_exclusive_group(required=True)
    how.add_argument("--key", help="licence key, sent with the company to the activation service")
    how.add_argument("--file", type=Path, help="licence file made for this host and MAC")
    activate.add_argument("--company", required=True)
    activate.set_defaults(func=cmd_licence_activate)
    track = licence.add_parser("track-unlicensed", help="track jobs of users without a seat (on) or deny them (off)")
    track.add_argument("state", choices=("on", "off"))
    track.set_defaults(func=cmd_licence_track_unlicensed)

    notices = sub.add_parser("notices", help="notifications").add_subparsers(metavar="ACTION")
    notices.add_parser("send", help="send today's notice of users denied a seat (at most one a day)").set_defaults(
        func=cmd_notices_send)


def _runtime(settings: Settings):
    from pageledger.bootstrap import build_runtime

    return build_runtime(settings)


def cmd_users_sync(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.directory import DirectoryError

    with _runtime(settings) as runtime:
        runtime.catch_up()
        try:
            report = runtime.sync_users()
        except DirectoryError as exc:
            print(f"pageledger: {exc}", file=sys.stderr)
            return 1
        runtime.catch_up()
    if args.json:
        from api.users import sync_report_json

        print(json.dumps(sync_report_json(report), indent=2))
    else:
        print(report.summary())
        for clash in report.clashes:
            print(f"clash: {clash.describe()}")
        for warning in report.kept_warnings():
            print(f"warning: {warning}")
    return 0


def cmd_users_list(settings: Settings, args: argparse.Namespace) -> int:
    from projections.users import list_users

    with _runtime(settings) as runtime:
        runtime.catch_up()
        with runtime.reader.connect() as conn:
            for u in list_users(conn):
                state = "active" if u.active else "inactive"
                print(f"{u.login:<24} {u.source:<8} {u.role:<8} {state:<8} {u.full_name}")
    return 0


def cmd_licence_show(settings: Settings, args: argparse.Namespace) -> int:
    from api.licence import licence_json, server_json
    from projections.licence_seats import licence_summary

    with _runtime(settings) as runtime:
        runtime.catch_up()
        with runtime.reader.connect() as conn:
            summary = licence_summary(conn, runtime.clock())
        host = runtime.licensing.identity
    print(json.dumps({"licence": licence_json(summary), "server": server_json(host)}, indent=2))
    return 0


def cmd_licence_activate(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.licence_keys import ActivationServiceError, LicenceRefused

    with _runtime(settings) as runtime:
        licensing = runtime.licensing
        try:
            if args.file:
                verified = licensing.activate_file(args.file.read_text(), args.company)
            else:
                verified = licensing.activate_online(args.key, args.company)
        except (LicenceRefused, ActivationServiceError, OSError) as exc:
            print(f"pageledger: licence not activated: {exc}", file=sys.stderr)
            return 1
        runtime.catch_up()
    print(f"activated ({verified.method}): {verified.type}, {verified.seats} seats, for {verified.company}")
    return 0


def cmd_licence_track_unlicensed(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as runtime:
        runtime.licensing.set_track_unlicensed(args.state == "on", by="cli")
        runtime.catch_up()
    print(f"track unlicensed users: {args.state}")
    return 0


def cmd_notices_send(settings: Settings, args: argparse.Namespace) -> int:
    if not any(a.strip() for a in settings.admin_emails.split(",")):
        print("pageledger: no admin_emails configured: no notice sent", file=sys.stderr)
        return 1
    with _runtime(settings) as runtime:
        runtime.catch_up()
        named = runtime.send_denial_notice()()
    print(f"notice sent naming {len(named)} users" if named else "no notice due")
    return 0
