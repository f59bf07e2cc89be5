"""Files and directories only the server's own user may open.

The data directory holds personal data (who printed what, password hashes, the keys that sign
sessions and PIN digests), so its files are 0600 and its directories 0700 whatever the umask
of the process that made them: modes are set outright, not left to ``mkdir``/``open``, and an
existing file or directory with looser modes is tightened.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("pageledger")

PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700


def make_private_directory(path: Path) -> Path:
    """Create `path` (and its parents) if needed and make it 0700.

    A shared directory with the sticky bit (``/tmp``, used as a data directory by mistake) is
    left as it is: making it private would lock every other user of the host out of it."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    if path.stat().st_mode & stat.S_ISVTX:
        log.warning("%s is a shared directory (sticky bit): its mode is left as it is", path)
        return path
    restrict(path, PRIVATE_DIRECTORY)
    return path


def make_private_file(path: Path) -> Path:
    """Create `path` empty (0600) if it is missing, else make the existing file 0600.

    An existing file is never opened here, only chmod-ed: closing any descriptor of a file
    drops every POSIX lock this process holds on it, and SQLite's locks on a database are such
    locks. A process that lost them looks absent to the others, and the last SQLite connection
    to close elsewhere then deletes the -wal and -shm files under this one's feet, leaving it
    reading a stale snapshot for good."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # new and empty: nobody can hold a lock on it yet
    restrict(path, PRIVATE_FILE)
    return path


def restrict(path: Path, mode: int) -> None:
    """Set `path`'s mode to `mode` if it differs. A file of another user's that we may not
    chmod is reported, not fatal: the command can still do its work."""
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            path.chmod(mode)
    except PermissionError as exc:
        log.warning("cannot make %s private (mode %o): %s", path, mode, exc)


def restrict_if_present(path: Path, mode: int) -> None:
    try:
        restrict(path, mode)
    except FileNotFoundError:
        pass
