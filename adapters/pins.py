"""PIN digests: how PINs are stored and compared without ever being stored.

A PIN identifies its owner at a release station, so PINs must be unique and looked up by
value: a salted hash (argon2) cannot be. A keyed HMAC can, and without the server's secret a
stolen database does not give the PINs away by hashing all 10,000 four-digit candidates.
The secret lives in a file of its own (mode 0600) in the data directory, never in the database.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from adapters.private_files import PRIVATE_FILE, make_private_directory, restrict


class PinDigester:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the PIN secret must be at least 16 bytes")
        self._secret = secret

    def __call__(self, pin: str) -> str:
        """The digest of `pin`; "" for no PIN."""
        pin = pin.strip()
        if not pin:
            return ""
        return hmac.new(self._secret, pin.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "PinDigester(<secret>)"


def load_or_create_secret(path: Path) -> bytes:
    """The installation's secret kept in `path`, created (0600, in a 0700 directory) on first
    use; an existing file with looser modes is made 0600."""
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        pass
    else:
        restrict(path, PRIVATE_FILE)
        return secret
    make_private_directory(path.parent)
    secret = secrets.token_bytes(32)
    # Written whole to a file of our own, then published under its name with link(), which
    # fails when it exists: another process (gunicorn's workers start together) never reads a
    # file that was created but not yet written.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    return secret
