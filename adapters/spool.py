"""The spool store: held jobs' data on disk, named by content hash, never in the database.

A write streams the body into a temporary file in the spool directory while hashing it,
fsyncs it, renames it to its SHA-256 and fsyncs the directory: after `write` returns, the
data survives a crash, and the same data stored twice is one file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class SpoolTooLarge(ValueError):
    pass


class SpoolStore:
    def __init__(self, directory: Path, max_bytes: int = 2 << 30) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("not a spool reference")
        return self.directory / digest[:2] / digest

    def write(self, stream: BinaryIO) -> tuple[str, int]:
        """Store everything `stream` yields; returns (sha256 hex, size)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SpoolTooLarge(f"spool data over {self.max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            final = self.path(digest.hexdigest())
            final.parent.mkdir(exist_ok=True)
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
        return digest.hexdigest(), size
