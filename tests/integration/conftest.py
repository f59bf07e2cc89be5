"""Shared fixtures for integration tests: real peers, started by the tests themselves."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from slapd_harness import Slapd, SlapdUnavailable  # noqa: E402


def unavailable(reason: str) -> None:
    """A missing peer fails the test, under CI=true and everywhere else: nothing is skipped
    (./run.sh test installs and starts every peer the tests need)."""
    ci = " under CI" if os.environ.get("CI", "").lower() == "true" else ""
    pytest.fail(f"required test peer unavailable{ci}: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory):
    try:
        server = Slapd(tmp_path_factory.mktemp("slapd")).start()
    except SlapdUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture()
def slapd(tmp_path):
    """A fresh slapd per test, for tests that change the directory."""
    try:
        server = Slapd(tmp_path / "slapd").start()
    except SlapdUnavailable as exc:
        unavailable(str(exc))
    yield server
    server.stop()
