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
