"""Times in the server's logs are ISO 8601 (domain.units.iso), never raw µs an admin cannot read.

Every log call of the server packages is read (as tests/unit/test_layering.py reads imports):
an argument that names a time (`submitted_at`, `licence.expires_at`, `now`, ...) must be passed
through a formatting call, not logged as the int it is stored as.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("adapters", "commands", "projections", "api", "workers", "pageledger", "domain")
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
TIME_NAME = re.compile(r"(^|_)(at|now|since|until|expires|timestamp|time|micros|us)$")


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def raw_times(source: str) -> list[tuple[int, str]]:
    """(line, name) of each time-like name logged as it is, in the log calls of `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS and _last_name(node.func.value) in {"log", "logger", "_log"}):
            continue
        values: list[ast.expr] = list(node.args[1:])
        for arg in node.args[:1]:  # an f-string message: its {placeholders}
            if isinstance(arg, ast.JoinedStr):
                values += [v.value for v in arg.values if isinstance(v, ast.FormattedValue)]
        for value in values:
            name = _last_name(value)
            if name and TIME_NAME.search(name):
                found.append((node.lineno, name))
    return found


def test_no_log_call_of_the_server_writes_a_time_as_a_raw_int():
    offenders = [f"{path.relative_to(ROOT)}:{line}: {name}"
                 for package in SERVER_PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
                 for line, name in raw_times(path.read_text())]
    assert offenders == []


def test_the_check_sees_a_raw_time_and_lets_a_formatted_one_pass():
    # The check above would pass on code it cannot read: prove it can fail.
    assert raw_times('log.info("expires %d", licence.expires_at)') == [(1, "expires_at")]
    assert raw_times('log.warning(f"job at {submitted_at}")') == [(1, "submitted_at")]
    assert raw_times('log.info("until %s", iso(licence.expires_at))') == []
    assert raw_times('log.info("%d seats", licence.seats)') == []
