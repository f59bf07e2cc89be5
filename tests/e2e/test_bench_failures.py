"""The bench keeps every figure it measured when another one fails, and names each failure."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import ROOT


def test_the_bench_prints_every_figure_it_measured_and_names_each_failure():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGELEDGER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PAGELEDGER_BENCH_PG"] = "postgresql://postgres@127.0.0.1:1"  # nothing listens there
    out = subprocess.run([sys.executable, "-m", "bench.run", "--jobs", "1000", "--repeat", "1",
                          "--stores", "postgresql,sqlite", "--only", "ingest,disk,commands"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    figures = out.stdout
    assert out.returncode == 1, figures + out.stderr[-3000:]
    # Every PostgreSQL figure failed, each on its own line with the reason ...
    for name in ("ingest_http", r"ingest_commands \(with validation\)", r"ingest_commands \(without validation\)"):
        assert re.search(rf"^{name}\s+postgresql\s+FAILED OperationalError", figures, re.M), figures
    assert re.search(r"^disk\s+postgresql\s+not measured: ingest_http failed", figures, re.M), figures
    # ... and the SQLite figures measured after them are all there.
    assert re.search(r"^ingest_http\s+sqlite\s+[\d,]+ jobs/s", figures, re.M), figures
    assert re.search(r"^disk\s+sqlite\s+\d+ B/job total", figures, re.M), figures
    assert len(re.findall(r"^ingest_commands\s+sqlite\s+[\d,]+ jobs/s", figures, re.M)) == 2, figures
    assert "# 3 figure(s) failed:" in figures, figures
