"""A held job's data is kept only when it arrives whole: the bytes received must be the length
and the SHA-256 the agent declared, and no more than the server's limit. Clients here lie on
purpose, over raw sockets: they declare a Content-Length and close early, cut a chunked body
short, or declare gigabytes. Nothing of such an upload is kept, and the agent's retry works."""
from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from agent.server import ServicesClient, SpoolTooLargeForServer
from tests.conftest import PG_ADMIN_URL, _pg_admin, make_live_server, wait_until
from tests.e2e.test_secure_hold import post

MIB = 1 << 20
LIMIT_MIB = 16  # the server under test holds jobs of up to 16 MiB (PAGELEDGER_MAX_SPOOL_MIB)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """One server per store for the module (each test takes jobs of its own), a secure queue "vault"."""
    tmp = tmp_path_factory.mktemp(f"spool-{request.param}")
    env = {"PAGELEDGER_MAX_SPOOL_MIB": str(LIMIT_MIB)}
    drop = None
    if request.param == "postgresql":
        admin, name = _pg_admin(), f"pl_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        env["PAGELEDGER_DATABASE_URL"] = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    live = make_live_server(tmp, **env)
    live.start()
    try:
        subprocess.run([sys.executable, "-m", "pageledger.cli", "printers", "secure", "vault", "on"],
                       cwd=live.workdir, env=live.env, check=True, capture_output=True)
        wait_until(lambda: post(live, printer="vault")[1]["decision"] == "hold", timeout=10, interval=0.5)
        yield live
    finally:
        live.stop()
        if drop:
            drop()


def held_job(server) -> str:
    _, result = post(server, printer="vault")
    assert result["decision"] == "hold", result
    return result["job_id"]


def raw_put(server, job_id: str, headers: dict[str, str], pieces, timeout: float = 15.0,
            close: bool = True) -> tuple[int, dict]:
    """PUT over a raw socket: send the head and `pieces` as given, half-close (unless `close` is
    false: the server must answer while the client could still send), read the answer."""
    head = f"PUT /Services/jobs/{job_id}/spool HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in {"Authorization": f"Bearer {server.agent_token}",
                                      "Content-Type": "application/octet-stream", **headers}.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(head.encode())
            for piece in pieces:
                sock.sendall(piece)
            if close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server stopped reading and closed: its answer says why
            pass
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
            status_line, _, rest = answer.partition(b"\r\n")
            head_end = answer.find(b"\r\n\r\n")
            if head_end >= 0:
                length = next((int(line.split(b":", 1)[1]) for line in answer[:head_end].split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(answer) >= head_end + 4 + length:
                    break
    assert answer, "no answer at all"
    status = int(answer.split(b" ", 2)[1])
    head_end = answer.find(b"\r\n\r\n")
    body = answer[head_end + 4:]
    return status, (json.loads(body) if body.strip() else {})


def chunked(*pieces: bytes, last: bool = True) -> list[bytes]:
    out = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces]
    return out + ([b"0\r\n\r\n"] if last else [])


def put_whole(server, job_id: str, data: bytes) -> requests.Response:
    return requests.put(f"{server.url}/Services/jobs/{job_id}/spool", data=data,
                        headers={**server.headers(server.agent_token), "Content-Type": "application/octet-stream",
                                 "X-Content-SHA256": hashlib.sha256(data).hexdigest()}, timeout=30)


def spool_files(server) -> list[Path]:
    return sorted((server.workdir / "var" / "spool").glob("**/*"))


def kept_nothing(server, *good: str) -> bool:
    """Only whole uploads' files in the spool: no temporary file, nothing else."""
    files = [p for p in spool_files(server) if p.is_file()]
    return sorted(p.name for p in files) == sorted(set(good))


def good_spools(server) -> list[str]:
    return [p.name for p in spool_files(server) if p.is_file() and not p.name.startswith(".")]


def test_a_client_that_declares_more_than_it_sends_and_closes_is_refused_and_its_retry_holds_the_job(server):
    job = held_job(server)
    data = bytes(range(256)) * 4096 * 4  # 4 MiB
    before = good_spools(server)
    status, body = raw_put(server, job, {"Content-Length": str(12 * MIB),
                                         "X-Content-SHA256": hashlib.sha256(data).hexdigest()}, [data[:MIB]])
    assert status == 400, body
    assert "cut short" in body["errors"]["Content-Length"][0] and f"received {MIB}" in body["errors"]["Content-Length"][0]
    assert kept_nothing(server, *before)
    # The agent's retry with the whole data is the job's data (not "held with other data").
    r = put_whole(server, job, data)
    assert r.status_code == 201, r.text
    assert (r.json()["state"], r.json()["size"], r.json()["spool"]) == ("held", len(data), hashlib.sha256(data).hexdigest())
    assert put_whole(server, job, data).status_code == 201  # the same data again: idempotent


def test_a_declared_length_with_no_body_holds_nothing(server):
    job = held_job(server)
    data = b"%PDF-1.7\n" * 1000
    before = good_spools(server)
    status, body = raw_put(server, job, {"Content-Length": str(MIB),
                                         "X-Content-SHA256": hashlib.sha256(data).hexdigest()}, [])
    assert status == 400 and "received 0" in body["errors"]["Content-Length"][0], body
    assert hashlib.sha256(b"").hexdigest() not in good_spools(server)
    assert kept_nothing(server, *before)
    assert put_whole(server, job, data).status_code == 201


def test_gigabytes_declared_are_refused_before_a_byte_is_read(server):
    job = held_job(server)
    before = good_spools(server)
    for declared in (2 << 30, 3 << 30):
        t0 = time.monotonic()
        status, body = raw_put(server, job, {"Content-Length": str(declared), "X-Content-SHA256": "0" * 64},
                               [], close=False)
        assert status == 413, body
        assert f"declares {declared} bytes" in body["description"] and "max_spool_mib" in body["description"]
        assert time.monotonic() - t0 < 5
    assert kept_nothing(server, *before)
    data = b"after a refusal"
    assert put_whole(server, job, data).status_code == 201


def test_data_that_does_not_hash_to_the_declared_sha256_is_refused(server):
    job = held_job(server)
    before = good_spools(server)
    data = b"the real data" * 1000
    status, body = raw_put(server, job, {"Content-Length": str(len(data)),
                                         "X-Content-SHA256": hashlib.sha256(b"other").hexdigest()}, [data])
    assert status == 400 and "hash to " + hashlib.sha256(data).hexdigest() in body["errors"]["X-Content-SHA256"][0]
    assert kept_nothing(server, *before)
    assert put_whole(server, job, data).status_code == 201


def test_a_chunked_upload_cut_short_is_a_400_and_holds_nothing(server):
    job = held_job(server)
    data = b"c" * (2 * MIB)
    before = good_spools(server)
    status, body = raw_put(server, job, {"Transfer-Encoding": "chunked",
                                         "X-Content-SHA256": hashlib.sha256(data).hexdigest()},
                           chunked(data[:MIB], last=False))
    assert status == 400, body
    assert "before its last chunk" in body["errors"]["body"][0]
    assert kept_nothing(server, *before)
    status, body = raw_put(server, job, {"Transfer-Encoding": "chunked",
                                         "X-Content-SHA256": hashlib.sha256(data).hexdigest()},
                           chunked(data[:MIB], data[MIB:]))
    assert status == 201 and body["size"] == len(data), body


def test_a_chunked_upload_over_the_limit_is_cut_off_with_413(server):
    job = held_job(server)
    before = good_spools(server)
    block = b"z" * MIB
    # 32 KiB past the limit: the server reads it all before refusing, so no unread megabytes
    # make it reset the connection over its answer.
    status, body = raw_put(server, job, {"Transfer-Encoding": "chunked", "X-Content-SHA256": "0" * 64},
                           chunked(*[block] * LIMIT_MIB, b"z" * (32 << 10)))
    assert status == 413 and f"passed {LIMIT_MIB * MIB} bytes" in body["description"], body
    assert kept_nothing(server, *before)


def test_an_upload_without_the_digest_header_is_told_to_send_it(server):
    job = held_job(server)
    before = good_spools(server)
    status, body = raw_put(server, job, {"Content-Length": "4"}, [b"data"])
    assert status == 428 and "X-Content-SHA256" in body["description"], body
    status, body = raw_put(server, job, {"Content-Length": "4", "X-Content-SHA256": "not-hex"}, [b"data"])
    assert status == 400 and "X-Content-SHA256" in body["errors"], body
    assert kept_nothing(server, *before)


def test_other_data_for_a_held_job_is_refused_without_being_stored(server):
    job = held_job(server)
    data = b"first data"
    assert put_whole(server, job, data).status_code == 201
    before = good_spools(server)
    r = put_whole(server, job, b"other data")
    assert r.status_code == 400 and "other data" in r.json()["errors"]["job_id"][0]
    assert kept_nothing(server, *before)


def test_the_agents_client_uploads_with_length_and_digest_and_hears_413(server, tmp_path):
    client = ServicesClient(server.url, server.agent_token)
    spool = tmp_path / "job.spool"
    spool.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8192)
    job = held_job(server)
    assert client.upload_spool(job, str(spool)) == 201
    assert client.upload_spool(job, str(spool)) == 201  # a CUPS retry after success
    digest = hashlib.sha256(spool.read_bytes()).hexdigest()
    assert (server.workdir / "var" / "spool" / digest[:2] / digest).read_bytes() == spool.read_bytes()
    empty = tmp_path / "empty.spool"
    empty.write_bytes(b"")
    assert client.upload_spool(held_job(server), str(empty)) == 201  # within the first piece: no wait
    big = tmp_path / "big.spool"
    with open(big, "wb") as handle:
        handle.truncate((LIMIT_MIB + 1) * MIB)
    with pytest.raises(SpoolTooLargeForServer, match="max_spool_mib"):
        client.upload_spool(held_job(server), str(big))
