"""Held jobs' data goes to the server streamed 1 MiB at a time, with its length and SHA-256
declared: a job far bigger than the agent's memory use arrives whole, and the server can tell."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.server import ServicesClient, SpoolUploadUnsupported
from tests.services_double import TOKEN, ServicesDouble

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def services(tmp_path):
    double = ServicesDouble(tmp_path / "received").start()
    yield double
    double.stop()


def test_a_200_mb_spool_is_streamed_with_its_length_and_digest_in_bounded_memory(services, tmp_path):
    spool = tmp_path / "big.spool"
    with open(spool, "wb") as handle:
        block = os.urandom(1 << 20)
        for _ in range(200):
            handle.write(block)
    script = ("import json, resource, sys, tracemalloc; sys.path.insert(0, sys.argv[1]); "
              "from agent.server import ServicesClient; tracemalloc.start(); "
              "status = ServicesClient(sys.argv[2], sys.argv[3]).upload_spool('job-1', sys.argv[4]); "
              "print(json.dumps({'status': status, 'peak_bytes': tracemalloc.get_traced_memory()[1], "
              "'maxrss_kb': int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])}))")
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of a big pytest
    # process would report the parent's peak (seen in the full suite: 165 MB), not its own.
    result = subprocess.run([sys.executable, "-c", script, str(ROOT), services.url, TOKEN, str(spool)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == 201
    upload = services.uploads["job-1"]
    assert upload["chunked"] is False and upload["bytes"] == 200 << 20
    assert upload["content_length"] == str(200 << 20)
    assert upload["sha256"] == hashlib.sha256(spool.read_bytes()).hexdigest()
    assert upload["path"].read_bytes()[-(1 << 20):] == block
    # 200 MB went through a process whose Python objects never held more than a few MiB of it
    # at once. RSS also depends on how glibc keeps freed 1 MiB buffers (seen: 100-165 MiB on a
    # loaded machine), but holding the upload whole would need more than the file itself.
    assert report["peak_bytes"] < 8 << 20, report
    assert report["maxrss_kb"] < 200 * 1024, report


def test_an_upload_to_a_server_without_the_endpoint_says_so(services, tmp_path):
    services.spool_supported = False
    spool = tmp_path / "s"
    spool.write_bytes(b"data")
    with pytest.raises(SpoolUploadUnsupported):
        ServicesClient(services.url, TOKEN).upload_spool("job-2", str(spool))
