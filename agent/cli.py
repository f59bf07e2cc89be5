"""``pageledger-agent``: count a document, install/uninstall the backend, flush the outbox, status,
run the release service.

Exit codes: 0 done; 1 error (message on stderr); 2 bad usage; 3 ``count`` could not tell
the format (the JSON is still printed, with ``pages`` null).
"""
from __future__ import annotations

import json
import os
import sys

import agent
from agent.pagecount import count_job

# The other sub-commands' modules (install, outbox, server) are imported by their handlers:
# ``count`` is run per document by scripts, and must not pay for them.


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _parser():
    import argparse  # with its gettext and the sub-commands' help: not for a plain ``count``
    from pathlib import Path

    from agent.config import DEFAULT_SERVER_BIN

    parser = argparse.ArgumentParser(prog="pageledger-agent", description="PageLedger print accounting agent for CUPS")
    parser.add_argument("--version", action="version", version=f"pageledger-agent {agent.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    count = sub.add_parser("count", help="count a document's pages and print JSON")
    count.add_argument("file")
    count.add_argument("--copies", type=_positive_int, default=1)
    count.add_argument("--duplex", action="store_true", default=None)
    count.add_argument("--number-up", type=_positive_int, default=1)

    def state_option(p) -> None:
        p.add_argument("--state-dir", type=Path, default=None,
                       help="agent state (config, outbox, policy); default $PAGELEDGER_AGENT_STATE_DIR or /var/lib/pageledger-agent")

    inst = sub.add_parser("install", help="install the CUPS backend and wrap queues",
                          description="Properties come from --package-ini [Properties] and NAME=value arguments "
                                      "(the command line wins): SERVICESURL, AGENTTOKEN, INSTALLDIR, IGNOREDISCONNECTED, "
                                      "SUPPRESSREBOOTS, SUPPRESSADDREMOVE, SUPPRESSSHORTCUTS, SERVERTIMEOUT.")
    inst.add_argument("properties", nargs="*", metavar="NAME=value")
    inst.add_argument("--package-ini", type=Path)
    inst.add_argument("--queues", help="comma-separated queues to wrap (default: all)")
    inst.add_argument("--server-bin", type=Path, default=DEFAULT_SERVER_BIN, help="CUPS ServerBin (default /usr/lib/cups)")
    inst.add_argument("--cups-server", help="cupsd to administer, host:port (default: the local one)")
    inst.add_argument("--bin-dir", type=Path, default=Path("/usr/local/bin"), help="where the shortcut goes")
    inst.add_argument("--secure-queues", help="comma-separated secure queues: each gets a release queue, and "
                                              "their jobs never print unreleased")
    inst.add_argument("--secure-offline", choices=("retry", "refuse"),
                      help="a secure queue's job while the server cannot be reached: kept by CUPS and retried "
                           "(default), or refused")
    inst.add_argument("--release-service", action="store_true",
                      help="also run the release service here, as the systemd unit pageledger-release.service "
                           "(for a print server apart from the PageLedger server)")
    inst.add_argument("--systemd-dir", type=Path, default=Path("/etc/systemd/system"),
                      help="where --release-service writes its unit (default /etc/systemd/system)")
    state_option(inst)

    uninst = sub.add_parser("uninstall", help="restore the queues' device URIs and remove the backend",
                            description="The state dir is found by itself: the one the installed launcher was "
                                        "made for, $PAGELEDGER_AGENT_STATE_DIR, the default, or the one the "
                                        "installed backend in --server-bin names.")
    uninst.add_argument("--cups-server")
    uninst.add_argument("--server-bin", type=Path, default=DEFAULT_SERVER_BIN,
                        help="CUPS ServerBin whose backend names the state dir (default /usr/lib/cups)")
    uninst.add_argument("--purge", action="store_true", help="also delete the state dir (refused while jobs wait)")
    state_option(uninst)

    flush = sub.add_parser("flush", help="post the jobs waiting in the outbox")
    state_option(flush)
    status = sub.add_parser("status", help="print the agent's state as JSON")
    state_option(status)

    release = sub.add_parser("release-service", help="print released jobs through this print server's CUPS",
                             description="Takes the orders of this cupsd's release queues from the server "
                                         "(the agent's ServicesUrl and token, from the state dir) and prints them.")
    release.add_argument("--cups-server", default="", help="host:port of cupsd (default: the local one)")
    release.add_argument("--services-url", default="", help="overrides the agent's ServicesUrl")
    release.add_argument("--printer-poll-seconds", type=float, default=None,
                         help="how often CUPS is asked for the printers' states (default: PrinterPollSeconds, 30)")
    state_option(release)
    return parser


def _count(args) -> int:
    path = args.file
    if not os.path.isfile(path):
        print(f"pageledger-agent: error: {path}: no such file", file=sys.stderr)
        return 1
    try:
        result = count_job(path, copies=args.copies, duplex=args.duplex, number_up=args.number_up)
    except OSError as err:
        print(f"pageledger-agent: error: {path}: {err.strerror}", file=sys.stderr)
        return 1
    print(json.dumps(result.as_json()))
    if result.pages is None:
        print(f"pageledger-agent: {path}: unknown format, pages not counted"
              f"{' (' + result.error + ')' if result.error else ''}", file=sys.stderr)
        return 3
    return 0


def _install(args) -> int:
    from agent.config import AgentConfig, parse_name_value_arguments, read_ini_properties, state_dir_from_environment
    from agent.install import CupsAdmin, install
    from agent.systemd_unit import Systemd

    properties = {}
    if args.package_ini:
        properties.update(read_ini_properties(args.package_ini))
    properties.update(parse_name_value_arguments(args.properties))
    state_dir = args.state_dir or state_dir_from_environment()
    config = AgentConfig(state_dir=state_dir).with_properties(properties)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    secure = [q.strip() for q in args.secure_queues.split(",") if q.strip()] if args.secure_queues else None
    install(config, server_bin=args.server_bin, cups=CupsAdmin(args.cups_server), queues=queues, bin_dir=args.bin_dir,
            secure_queues=secure, secure_offline=args.secure_offline,
            release_service=Systemd(args.systemd_dir) if args.release_service else None)
    print(f"pageledger-agent {agent.__version__} installed")
    return 0


def _flush(args) -> int:
    from agent.config import load_config, state_dir_from_environment
    from agent.outbox import Outbox
    from agent.policy_cache import PolicyStore
    from agent.server import ServerError, ServicesClient

    config = load_config(args.state_dir or state_dir_from_environment())
    client = ServicesClient(config.services_url, config.agent_token, config.server_timeout)
    with Outbox(config.state_dir / "outbox.sqlite3", warn=lambda line: print(line, file=sys.stderr)) as outbox:
        try:
            report = outbox.flush(client, config.batch_size)
        except ServerError as err:
            print(f"pageledger-agent: error: server not reached ({err}); {outbox.count()} jobs still queued", file=sys.stderr)
            return 1
    if report.skipped_locked:
        print(f"another process is posting the outbox; {report.remaining} jobs queued")
        return 0
    PolicyStore(config.state_dir).record_connection()
    print(f"posted {report.sent} jobs, {report.rejected} rejected, {report.remaining} queued")
    return 0


def _status(args) -> int:
    from agent.config import load_config, state_dir_from_environment
    from agent.outbox import Outbox
    from agent.policy_cache import PolicyStore

    config = load_config(args.state_dir or state_dir_from_environment())
    policy = PolicyStore(config.state_dir).load()
    with Outbox(config.state_dir / "outbox.sqlite3") as outbox:
        queued, rejected = outbox.count(), len(outbox.rejected())
    print(json.dumps({"version": agent.__version__, "services_url": config.services_url,
                      "ignore_disconnected": config.ignore_disconnected, "connected_once": policy.connected_once,
                      "offline_policy": policy.offline, "queued": queued, "rejected": rejected}))
    return 0


def _release_service(args) -> int:
    from agent import release_service

    argv = ["--cups-server", args.cups_server, "--services-url", args.services_url]
    if args.printer_poll_seconds is not None:
        argv += ["--printer-poll-seconds", str(args.printer_poll_seconds)]
    return release_service.main(argv + (["--state-dir", str(args.state_dir)] if args.state_dir else []))


def _uninstall(args) -> int:
    from agent.install import CupsAdmin, uninstall

    uninstall(_installed_state_dir(args), cups=CupsAdmin(args.cups_server), purge=args.purge)
    return 0


def _installed_state_dir(args):
    """Where the install to undo keeps its state (a Path): as told, else where its record is."""
    from agent.config import state_dir_from_environment
    from agent.install import BACKEND_NAME, RECORD_FILE, state_dir_of_backend

    if args.state_dir:
        return args.state_dir
    state = state_dir_from_environment()
    if (state / RECORD_FILE).exists():
        return state
    named = state_dir_of_backend(args.server_bin / "backend" / BACKEND_NAME)
    return named if named is not None else state


class _CountArguments:
    """``count FILE [--copies N] [--duplex] [--number-up N]``, as argparse would give them."""

    command = "count"

    def __init__(self, file: str, copies: int, duplex: bool | None, number_up: int):
        self.file, self.copies, self.duplex, self.number_up = file, copies, duplex, number_up


def _plain_count(argv: list[str]) -> _CountArguments | None:
    """A well-formed ``count`` command line, read without argparse (whose import is most of what
    ``count`` of a small document would cost); None for anything else, which argparse reads
    (and explains, for a bad one)."""
    if len(argv) < 2 or argv[0] != "count" or argv[1].startswith("-"):
        return None
    copies, duplex, number_up = 1, None, 1
    rest = argv[2:]
    while rest:
        option = rest.pop(0)
        if option == "--duplex":
            duplex = True
        elif option in ("--copies", "--number-up") and rest and rest[0].isdigit() and int(rest[0]) >= 1:
            if option == "--copies":
                copies = int(rest.pop(0))
            else:
                number_up = int(rest.pop(0))
        else:
            return None
    return _CountArguments(argv[1], copies, duplex, number_up)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _plain_count(argv) or _parser().parse_args(argv)
    handlers = {"count": _count, "install": _install, "uninstall": _uninstall, "flush": _flush, "status": _status,
                "release-service": _release_service}
    try:
        return handlers[args.command](args)
    except Exception as err:  # config and install errors are imported only when one happens
        from agent.config import ConfigError
        from agent.install import InstallError

        if not isinstance(err, (ConfigError, InstallError)):
            raise
        print(f"pageledger-agent: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
