"""Private files and directories get their modes outright, not from the umask."""
import os
import stat

import pytest

from adapters.private_files import make_private_directory, make_private_file


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_new_ones_are_private_even_under_a_permissive_umask(tmp_path, permissive_umask):
    directory = make_private_directory(tmp_path / "var" / "spool")
    assert mode(directory) == 0o700
    assert mode(make_private_file(directory / "pageledger.db")) == 0o600


def test_existing_loose_ones_are_tightened_and_a_file_keeps_its_content(tmp_path):
    loose = tmp_path / "var"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    secret = loose / "pin.key"
    secret.write_bytes(b"secret")
    secret.chmod(0o644)
    make_private_directory(loose)
    make_private_file(secret)
    assert (mode(loose), mode(secret), secret.read_bytes()) == (0o700, 0o600, b"secret")


def test_a_shared_sticky_directory_such_as_tmp_is_left_as_it_is(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    make_private_directory(shared)
    assert mode(shared) == 0o1777


def test_making_an_open_database_file_private_keeps_this_process_s_locks_on_it(tmp_path):
    # Closing any descriptor of a file drops all of this process's POSIX locks on it: SQLite's
    # locks on a database are such locks, and losing them let another process's last close
    # delete the -wal/-shm under a running server, which then read a stale snapshot for good.
    import fcntl
    import subprocess
    import sys

    path = tmp_path / "pageledger.db"
    path.write_bytes(b"x")
    holder = open(path, "rb+")
    fcntl.lockf(holder, fcntl.LOCK_SH)
    make_private_file(path)
    probe = ("import fcntl,sys\nf=open(sys.argv[1],'rb+')\n"
             "try:\n    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n    print('held')\n"
             "else:\n    print('free')\n")
    seen = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True).stdout.strip()
    holder.close()
    assert seen == "held"
