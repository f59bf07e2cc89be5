"""`pageledger users ...`, `pageledger licence ...` and `pageledger notices send`.

Each sub-command is thin: build the runtime, call one command or query, print, exit code 0
on success, 1 when the command refused (with the reason on stderr), 2 for bad usage.

Passwords are read from a prompt, or from stdin with --password-stdin, never from the
command line (where `ps` and shell histories would show them). Input is checked by the same
schemas as the HTTP API's (api.users), so both refuse the same things in the same words.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from domain.users import ROLES
from pageledger.settings import Settings

REFUSED = 1
BAD_USAGE = 2


def add_identity_commands(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="users: directory sync and local accounts").add_subparsers(metavar="ACTION")
    sync = users.add_parser("sync", help="import and update users from the configured directory")
    sync.add_argument("--json", action="store_true", help="print the report as JSON")
    sync.set_defaults(func=cmd_users_sync)
    users.add_parser("list", help="list users").set_defaults(func=cmd_users_list)
    add = users.add_parser("add", help="add a local account (servers with local accounts, not LDAP)")
    add.add_argument("login")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--full-name", default="")
    add.add_argument("--email", default="")
    add.add_argument("--department", default="")
    _password_source(add)
    add.set_defaults(func=cmd_users_add)
    passwd = users.add_parser("passwd", help="set a local account's password")
    passwd.add_argument("login")
    _password_source(passwd)
    passwd.set_defaults(func=cmd_users_passwd)
    role = users.add_parser("role", help="give a user another role")
    role.add_argument("login")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(func=cmd_users_role)
    remove = users.add_parser("remove", help="remove a local account: it can no longer log in and frees its seat")
    remove.add_argument("login")
    remove.set_defaults(func=cmd_users_remove)

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
        print(json.dumps(report.as_json(), indent=2))
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


def _password_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin instead of a prompt")


def _refused(message: str, code: int = REFUSED) -> int:
    print(f"pageledger: {message}", file=sys.stderr)
    return code


def _read_password(args: argparse.Namespace) -> str | None:
    """The new password, from stdin or a prompt asked twice; None (said why) if there is none."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        _refused("no terminal to ask for the password on: pipe it in with --password-stdin", BAD_USAGE)
        return None
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        _refused("the passwords differ", BAD_USAGE)
        return None
    return first


def _checked(schema: object, data: dict) -> dict | None:
    """`data` as the API's schema loads it; None (each bad field said) if it is refused."""
    from marshmallow import ValidationError

    try:
        return schema.load(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        for name, messages in sorted(exc.messages.items()):
            _refused(f"{name}: {' '.join(messages)}", BAD_USAGE)
        return None


def _user_with_login(runtime, login: str):
    """The one user (any source, removed ones left out) with this login, or None (said why)."""
    from projections.users import users_with_login

    runtime.catch_up()
    with runtime.reader.connect() as conn:
        found = users_with_login(conn, login)
    if not found:
        _refused(f"no user {login}")
        return None
    if len(found) > 1:
        _refused(f"the login {login} is a user of several sources ({', '.join(u.source for u in found)})")
        return None
    return found[0]


def cmd_users_add(settings: Settings, args: argparse.Namespace) -> int:
    from api.users import LocalUserSchema
    from domain.users import UserError

    password = _read_password(args)
    if password is None:
        return BAD_USAGE
    schema = LocalUserSchema()
    data = _checked(schema, {"login": args.login, "password": password, "role": args.role,
                             "full_name": args.full_name, "email": args.email, "department": args.department})
    if data is None:
        return BAD_USAGE
    with _runtime(settings) as runtime:
        try:
            user = runtime.add_local_user(login=data["login"], password=data["password"], role=data["role"],
                                          profile=schema.profile(data))
        except UserError as exc:
            return _refused(str(exc))
        runtime.catch_up()
    print(f"added local user {user.login} ({user.role})")
    return 0


def _change_user(settings: Settings, login: str, change) -> tuple[int, str, object]:  # noqa: ANN001
    """Find the user `login`, apply `change(runtime, user_id)` and catch up. Returns (exit code,
    the user's login, what the change answered); a refusal is already said on stderr."""
    from uuid import UUID

    from commands.users import NoSuchUser
    from domain.users import UserError  # LastActiveAdmin is a UserError

    with _runtime(settings) as runtime:
        user = _user_with_login(runtime, login)
        if user is None:
            return REFUSED, login, None
        try:
            result = change(runtime, UUID(user.user_id))
        except (NoSuchUser, UserError) as exc:
            return _refused(str(exc)), login, None
        runtime.catch_up()
    return 0, user.login, result


def cmd_users_passwd(settings: Settings, args: argparse.Namespace) -> int:
    from api.users import PasswordSchema

    password = _read_password(args)
    if password is None:
        return BAD_USAGE
    data = _checked(PasswordSchema(), {"password": password})
    if data is None:
        return BAD_USAGE
    code, login, _ = _change_user(settings, args.login,
                                  lambda runtime, uid: runtime.change_password(uid, data["password"]))
    if not code:
        print(f"password of {login} changed")
    return code


def cmd_users_role(settings: Settings, args: argparse.Namespace) -> int:
    code, login, changed = _change_user(settings, args.login,
                                        lambda runtime, uid: runtime.change_role(uid, args.role, by="cli"))
    if not code:
        print(f"{login} is now {args.role}" if changed else f"{login} was {args.role} already")
    return code


def cmd_users_remove(settings: Settings, args: argparse.Namespace) -> int:
    code, login, _ = _change_user(settings, args.login, lambda runtime, uid: runtime.remove_user(uid))
    if not code:
        print(f"removed {login}: the account can no longer log in and its seat is free")
    return code


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
