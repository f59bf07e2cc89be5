"""The spool store keeps a held job's data only when it is the data declared (length, SHA-256)
and within the limit; whatever else it was sent leaves no file behind."""
from __future__ import annotations

import hashlib
import io

import pytest

from adapters.spool import SpoolMismatch, SpoolStore, SpoolTooLarge


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files(store: SpoolStore) -> list[str]:
    return sorted(p.name for p in store.directory.glob("**/*") if p.is_file())


class CutShort(io.BytesIO):
    """The server's input stream when a chunked body ends before its last chunk."""

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        if not chunk:
            raise OSError("No more data after: b''")
        return chunk


def test_the_data_declared_is_stored_under_its_digest(tmp_path):
    store = SpoolStore(tmp_path / "spool", max_bytes=1 << 20)
    data = b"%PDF-1.7\n" * 100
    assert store.write(io.BytesIO(data), sha256=sha(data), size=len(data)) == (sha(data), len(data))
    assert store.path(sha(data)).read_bytes() == data
    assert store.write(io.BytesIO(data), sha256=sha(data)) == (sha(data), len(data))  # chunked: no size
    assert files(store) == [sha(data)]


def test_fewer_bytes_than_declared_are_refused_and_leave_nothing(tmp_path):
    store = SpoolStore(tmp_path / "spool")
    data = b"x" * 1000
    with pytest.raises(SpoolMismatch) as refused:
        store.write(io.BytesIO(data[:10]), sha256=sha(data), size=len(data))
    assert refused.value.errors == {"Content-Length": ["declared 1000 bytes, received 10: the upload was cut short"]}
    with pytest.raises(SpoolMismatch) as refused:
        store.write(io.BytesIO(b""), sha256=sha(data), size=len(data))
    assert "received 0" in refused.value.errors["Content-Length"][0]
    assert files(store) == []


def test_data_with_another_digest_is_refused_and_leaves_nothing(tmp_path):
    store = SpoolStore(tmp_path / "spool")
    with pytest.raises(SpoolMismatch) as refused:
        store.write(io.BytesIO(b"damaged"), sha256=sha(b"original"), size=7)
    assert list(refused.value.errors) == ["X-Content-SHA256"]
    assert sha(b"damaged") in refused.value.errors["X-Content-SHA256"][0]
    assert files(store) == []


def test_a_stream_that_breaks_is_the_senders_fault_and_leaves_nothing(tmp_path):
    store = SpoolStore(tmp_path / "spool")
    with pytest.raises(SpoolMismatch) as refused:
        store.write(CutShort(b"y" * 3000), sha256=sha(b"y" * 6000))
    assert "ended after 3000 bytes, before its last chunk" in refused.value.errors["body"][0]
    assert files(store) == []


def test_over_the_limit_is_refused_from_the_declared_size_without_reading(tmp_path):
    store = SpoolStore(tmp_path / "spool", max_bytes=1000)

    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("read a body declared too large")

    with pytest.raises(SpoolTooLarge, match="declares 1001 bytes.*up to 1000 bytes"):
        store.write(Unreadable(), sha256="0" * 64, size=1001)
    with pytest.raises(SpoolTooLarge, match="passed 1000 bytes"):
        store.write(io.BytesIO(b"z" * 1001), sha256="0" * 64)  # chunked: cut off once past it
    assert files(store) == []


def test_the_limit_is_a_setting_of_400_mib_by_default():
    from pageledger.settings import Settings, SettingsError

    assert Settings.load(environ={}).max_spool_mib == 400
    assert Settings.load(environ={"PAGELEDGER_MAX_SPOOL_MIB": "16"}).max_spool_mib == 16
    with pytest.raises(SettingsError, match="max_spool_mib"):
        Settings.load(environ={"PAGELEDGER_MAX_SPOOL_MIB": "0"})


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_the_spool_and_its_shard_directories_are_private_whatever_the_umask(tmp_path, umask):
    import os
    import stat

    store = SpoolStore(tmp_path / "spool", max_bytes=1 << 20)
    data = b"%PDF-1.7\n payslip\n"
    old = os.umask(umask)
    try:
        store.write(io.BytesIO(data), sha256=sha(data), size=len(data))
    finally:
        os.umask(old)
    stored = store.path(sha(data))
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700  # the shard holding the job's data
    assert stat.S_IMODE(stored.stat().st_mode) & 0o077 == 0
