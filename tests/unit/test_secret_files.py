"""The installation's secrets (pin.key, session.key) are made once, whole, whoever asks first."""
from __future__ import annotations

import multiprocessing
import stat

from adapters.pins import load_or_create_secret


def _load(path):
    return load_or_create_secret(path)


def test_processes_starting_together_all_read_the_same_whole_secret(tmp_path):
    # gunicorn's workers start together: one of them read a created but still empty pin.key
    # ("the PIN secret must be at least 16 bytes") before the secret was published whole.
    path = tmp_path / "var" / "pin.key"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        secrets = pool.map(_load, [path] * 64)
    assert len(set(secrets)) == 1 and len(secrets[0]) == 32
    assert [p.name for p in path.parent.iterdir()] == ["pin.key"]  # no temporary file left
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
