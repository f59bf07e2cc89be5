"""Under CI=true a missing test peer fails the run; elsewhere it is skipped with the reason."""
from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped

from conftest import unavailable


def test_a_missing_peer_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="unavailable under CI: no slapd"):
        unavailable("no slapd")


def test_a_missing_peer_is_skipped_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="no slapd"):
        unavailable("no slapd")
