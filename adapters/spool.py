"""The spool store: held jobs' data on disk, named by content hash, never in the database.

A write streams the body into a temporary file in the spool directory while hashing it,
checks it against the size and SHA-256 the sender declared, fsyncs it, renames it to its
SHA-256 and fsyncs the directory: after `write` returns, the data survives a crash, and the
same data stored twice is one file. Data that does not match what was declared (a client
that closed early, a chunked body cut short) never leaves the temporary file, which is removed.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from adapters.private_files import make_private_directory

CHUNK = 1 << 20


class SpoolTooLarge(ValueError):
    """More data than the store keeps for one job (declared or received)."""


class SpoolMismatch(ValueError):
    """The data received is not what the sender declared; `errors` names each broken promise
    (``Content-Length``, ``X-Content-SHA256``, ``body``: a chunked body cut short)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class SpoolStore:
    def __init__(self, directory: Path, max_bytes: int = 400 << 20) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("not a spool reference")
        return self.directory / digest[:2] / digest

    def open(self, digest: str) -> BinaryIO:
        """The held data, for reading (FileNotFoundError when it is gone)."""
        return open(self.path(digest), "rb")

    def remove(self, digest: str) -> bool:
        """Delete one held job's data; False if it was not there."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def stored(self) -> Iterator[tuple[str, float]]:
        """(SHA-256, modification time) of every file in the store (the orphan sweep's input)."""
        if not self.directory.is_dir():
            return
        for sub in self.directory.iterdir():
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for entry in sub.iterdir():
                if len(entry.name) == 64 and entry.name.startswith(sub.name):
                    try:
                        yield entry.name, entry.stat().st_mtime
                    except FileNotFoundError:
                        continue

    def write(self, stream: BinaryIO, *, sha256: str, size: int | None = None) -> tuple[str, int]:
        """Store everything `stream` yields, if it is `size` bytes (when given) hashing to
        `sha256`; returns (sha256 hex, size). Raises SpoolMismatch or SpoolTooLarge, keeping nothing."""
        if size is not None and size > self.max_bytes:
            raise SpoolTooLarge(self._too_large(f"declares {size} bytes"))
        make_private_directory(self.directory)
        digest = hashlib.sha256()
        received = 0
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := _read(stream, received):
                    received += len(chunk)
                    if received > self.max_bytes:
                        raise SpoolTooLarge(self._too_large(f"passed {self.max_bytes} bytes"))
                    digest.update(chunk)
                    out.write(chunk)
                if size is not None and received != size:
                    raise SpoolMismatch({"Content-Length": [
                        f"declared {size} bytes, received {received}: the upload was cut short"
                        if received < size else f"declared {size} bytes, received {received}"]})
                if digest.hexdigest() != sha256:
                    raise SpoolMismatch({"X-Content-SHA256": [
                        f"declared {sha256}, the {received} bytes received hash to {digest.hexdigest()}"]})
                out.flush()
                os.fsync(out.fileno())
            final = self.path(digest.hexdigest())
            make_private_directory(final.parent)  # 0700 whatever the umask, as the spool itself
            os.replace(tmp, final)
            for directory in (final.parent, self.directory):
                dir_fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest.hexdigest(), received

    def _too_large(self, what: str) -> str:
        return (f"the job's data {what}; this server holds jobs of up to {self.max_bytes} bytes "
                f"({self.max_bytes / (1 << 20):g} MiB, setting max_spool_mib)")


def _read(stream: BinaryIO, received: int) -> bytes:
    # The server's input stream raises OSError when the client's connection ends in the middle
    # of a chunked body (or times out): the sender's fault, not the store's.
    try:
        return stream.read(CHUNK)
    except OSError as exc:
        raise SpoolMismatch({"body": [f"the upload ended after {received} bytes, before its last chunk"]}) from exc
