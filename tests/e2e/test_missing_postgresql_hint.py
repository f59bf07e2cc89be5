"""A test run without PostgreSQL says how to get it: with the project's real test command."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_a_missing_postgresql_names_the_real_test_command():
    env = dict(os.environ, PYTHONPATH=str(ROOT), PAGELEDGER_TEST_PG="postgresql://postgres@127.0.0.1:1/postgres")
    needs_pg = ["tests/e2e/test_crash_safety.py", "-k", "postgresql"]
    out = subprocess.run([sys.executable, "-m", "pytest", *needs_pg, "-q", "-p", "no:cacheprovider"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "PostgreSQL is not reachable" in out.stdout, out.stdout[-3000:]
    assert "./run.sh test" in out.stdout, out.stdout[-3000:]
    assert "./run.sh test" in (ROOT / "run.sh").read_text()  # the command the hint names exists
