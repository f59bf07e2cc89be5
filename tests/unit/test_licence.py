"""The Licence aggregate: licence types, trial expiry and per-user seats, at chosen instants."""
from __future__ import annotations

from uuid import uuid4

import pytest
from eventsourcing.application import Application

from adapters.event_store import PageLedger
from domain.units import MICROS_PER_DAY
from domain.licence import (
    ANALYSIS, DENIED_EXPIRED, DENIED_NO_SEATS, DEVICE_MANAGEMENT, JOB_TRACKING,
    SEAT_ASSIGNED, SEAT_DENIED, SEAT_HELD, SECURE_PRINTING, SUITE, Licence, LicenceError,
    licence_id,
)

T0 = 1_764_000_000 * 1_000_000  # an instant in Nov 2025, µs


def trial() -> Licence:
    return Licence.install_trial(licence_id("test"), now=T0)


def test_a_trial_has_five_seats_and_every_feature_for_fifteen_days():
    lic = trial()
    assert lic.seats == 5
    assert lic.allows(SECURE_PRINTING, T0 + 14 * MICROS_PER_DAY)
    assert lic.is_valid(T0 + 15 * MICROS_PER_DAY - 1)


def test_an_expired_trial_disables_everything():
    lic = trial()
    later = T0 + 15 * MICROS_PER_DAY
    assert not lic.is_valid(later)
    assert lic.features(later) == frozenset()
    decision = lic.claim_seat("alice", later)
    assert decision.outcome == SEAT_DENIED and decision.reason == DENIED_EXPIRED


def test_first_users_take_seats_until_they_run_out():
    lic = trial()
    outcomes = [lic.claim_seat(f"user{i}", T0).outcome for i in range(7)]
    assert outcomes == [SEAT_ASSIGNED] * 5 + [SEAT_DENIED] * 2
    assert lic.seats_used == 5
    assert lic.claim_seat("user5", T0).reason == DENIED_NO_SEATS


def test_a_seat_holder_keeps_their_seat_whatever_the_case_of_their_login():
    lic = trial()
    assert lic.claim_seat("Alice", T0).outcome == SEAT_ASSIGNED
    assert lic.claim_seat("alice", T0 + 1).outcome == SEAT_HELD
    assert lic.seats_used == 1


def test_setting_a_user_inactive_frees_their_seat_for_someone_else():
    lic = trial()
    for i in range(5):
        lic.claim_seat(f"user{i}", T0)
    assert not lic.claim_seat("late", T0).granted
    assert lic.release_seat("user0", T0 + 1)
    assert not lic.release_seat("user0", T0 + 2)  # nothing to free twice
    assert lic.claim_seat("late", T0 + 3).outcome == SEAT_ASSIGNED


def test_a_denial_is_recorded_on_the_licence_once_per_user_and_again_under_new_terms():
    lic = Licence.install(licence_id("t"), type=SUITE, seats=0, expires_at=0, now=T0)
    for minute in range(10):
        assert not lic.claim_seat("bob", T0 + minute * 60_000_000).granted
    lic.claim_seat("bob", T0 + MICROS_PER_DAY)
    lic.activate(key="K", company="A", method="file", host="h", mac="m", type=SUITE, seats=0, expires_at=0,
                 now=T0 + 2 * MICROS_PER_DAY)
    lic.claim_seat("bob", T0 + 2 * MICROS_PER_DAY)
    denied = [e for e in lic.collect_events() if type(e).__name__ == "SeatDenied"]
    assert len(denied) == 2


def test_analysis_has_no_secure_printing_and_device_management_no_job_tracking():
    analysis = Licence.install(uuid4(), type=ANALYSIS, seats=10, expires_at=0, now=T0)
    assert analysis.allows(JOB_TRACKING, T0) and not analysis.allows(SECURE_PRINTING, T0)
    dm = Licence.install(uuid4(), type=DEVICE_MANAGEMENT, seats=10, expires_at=0, now=T0)
    assert not dm.allows(JOB_TRACKING, T0)


def test_activation_replaces_the_trial_terms_and_keeps_seat_holders():
    lic = trial()
    lic.claim_seat("alice", T0)
    lic.activate(key="K", company="Acme", method="file", host="srv", mac="00:11:22:33:44:55",
                 type=SUITE, seats=50, expires_at=T0 + 365 * MICROS_PER_DAY, now=T0 + MICROS_PER_DAY)
    assert (lic.type, lic.seats, lic.company) == (SUITE, 50, "Acme")
    assert lic.holds_seat("alice")
    assert lic.is_valid(T0 + 20 * MICROS_PER_DAY)


def test_an_already_expired_licence_or_unknown_type_cannot_be_applied():
    lic = trial()
    with pytest.raises(LicenceError, match="expired"):
        lic.activate(key="K", company="A", method="online", host="h", mac="m", type=SUITE,
                     seats=5, expires_at=T0, now=T0 + 1)
    with pytest.raises(LicenceError, match="unknown licence type"):
        Licence.install(uuid4(), type="gold", seats=1, expires_at=0, now=T0)


def test_the_licence_replays_from_the_compact_event_store():
    app = PageLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    lic = trial()
    lic.claim_seat("alice", T0)
    lic.claim_seat("bob", T0)
    lic.release_seat("alice", T0 + 5)
    lic.activate(key="K", company="Acme", method="online", host="h", mac="m", type=ANALYSIS,
                 seats=3, expires_at=0, now=T0 + 6)
    app.save(lic)
    again = app.repository.get(lic.id)
    assert again.seated == {"bob": T0}
    assert (again.type, again.seats, again.expires_at, again.installed_at) == (ANALYSIS, 3, 0, T0)
    assert isinstance(app, Application)
