"""A missing test peer fails the run, under CI=true and elsewhere alike: never a skip."""
from __future__ import annotations

import pytest
from _pytest.outcomes import Failed

from conftest import unavailable


def test_a_missing_peer_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="unavailable under CI: no slapd"):
        unavailable("no slapd")


def test_a_missing_peer_fails_outside_ci_too(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Failed, match="unavailable: no slapd"):
        unavailable("no slapd")
