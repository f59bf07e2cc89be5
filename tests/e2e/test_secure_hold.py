"""Secure queues over HTTP: the server answers "hold" and keeps the streamed spool data."""
from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys

import requests

from tests.conftest import wait_until
from tools.sample_jobs import sample_jobs

_keys = itertools.count()


def post(server, **fields):
    job = dict(next(sample_jobs(1)), job_key=f"hold/{next(_keys)}", **fields)
    r = requests.post(server.url + "/Services/jobs", json={"jobs": [job]},
                      headers=server.headers(server.agent_token), timeout=10)
    assert r.status_code == 200, r.text
    return job, r.json()["results"][0]


def put_spool(server, job_id, chunks):
    return requests.put(f"{server.url}/Services/jobs/{job_id}/spool", data=iter(chunks),  # chunked
                        headers={**server.headers(server.agent_token), "Content-Type": "application/octet-stream",
                                 "X-Content-SHA256": hashlib.sha256(b"".join(chunks)).hexdigest()},
                        timeout=30)


def test_a_secure_queue_holds_jobs_and_keeps_their_data(live_server):
    subprocess.run([sys.executable, "-m", "pageledger.cli", "printers", "secure", "vault", "on"],
                   cwd=live_server.workdir, env=live_server.env, check=True, capture_output=True)
    # The server's printer cache picks the change up within seconds.
    job, result = wait_until(lambda: (p := post(live_server, printer="vault"))[1]["decision"] == "hold" and p,
                             timeout=10, interval=0.5)
    data = [b"%PDF-1.7\n" + bytes(range(256)) * 4096] * 3  # ~3 MB in three chunks
    r = put_spool(live_server, result["job_id"], data)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "held" and body["size"] == sum(map(len, data))
    assert body["spool"] == hashlib.sha256(b"".join(data)).hexdigest()
    stored = live_server.workdir / "var" / "spool" / body["spool"][:2] / body["spool"]
    assert stored.read_bytes() == b"".join(data)
    # The agent retries: same data is fine, other data is refused; a re-post is still held.
    assert put_spool(live_server, result["job_id"], data).status_code == 201
    assert put_spool(live_server, result["job_id"], [b"other"]).status_code == 400
    again = requests.post(live_server.url + "/Services/jobs", json={"jobs": [job]},
                          headers=live_server.headers(live_server.agent_token), timeout=10).json()["results"][0]
    assert (again["status"], again["decision"]) == ("duplicate", "hold")


def test_only_jobs_on_secure_queues_can_be_held_and_bad_ids_are_refused(live_server):
    _, result = post(live_server, printer="open-office")
    assert result["decision"] == "print"
    r = put_spool(live_server, result["job_id"], [b"data"])
    assert r.status_code == 400 and "job_id" in r.json()["errors"]
    assert put_spool(live_server, "not-a-uuid", [b"x"]).status_code == 400
    assert put_spool(live_server, "00000000-0000-0000-0000-000000000000", [b"x"]).status_code == 404
    r = requests.put(f"{live_server.url}/Services/jobs/{result['job_id']}/spool", data=b"x",
                     headers=live_server.headers(live_server.admin_token), timeout=5)
    assert r.status_code == 403
    assert not list((live_server.workdir / "var" / "spool").glob("*/*"))  # nothing of a refused upload kept
