"""Licensing use cases on an in-memory event store: install, activate, seats under contention."""
from __future__ import annotations

import threading

import pytest

from adapters.event_store import PageLedger
from commands.licensing import Licensing, NotInstalled
from domain.licence import DEVICE_MANAGEMENT, SEAT_ASSIGNED, SEAT_DENIED, SUITE, LicenceError
from domain.units import MICROS_PER_DAY
from adapters.licence_keys import ActivationServiceError, HostIdentity, LicenceRefused, decode_key
from tools.licence_issuer import issue_key, issue_licence, make_key_pair

T0 = 1_764_000_000 * 1_000_000
HERE = HostIdentity("printsrv1", "00:11:22:33:44:55")
ISSUER = make_key_pair()


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def licensing(clock=None, **kw):
    app = PageLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    return Licensing(app, public_key=ISSUER.public_key(), identity=HERE, clock=clock or Clock(), **kw)


def licence_file(*, seats=20, type=SUITE, company="Acme", host=HERE.host, mac=HERE.mac, method="file"):
    key = issue_key(ISSUER, type=type, seats=seats, expires_at=T0 + 365 * MICROS_PER_DAY, company=company)
    return key, issue_licence(ISSUER, decode_key(key, ISSUER.public_key()), host=host, mac=mac, method=method,
                              issued_at=T0)


def test_nothing_is_licensed_before_setup():
    lic = licensing()
    with pytest.raises(NotInstalled):
        lic.claim_seat("alice")
    gate = lic.gate_job("alice")
    assert not gate.track and gate.reason == "no licence installed"


def test_a_trial_can_be_started_only_once():
    lic = licensing()
    lic.install_trial()
    with pytest.raises(LicenceError, match="only be started once"):
        lic.install_trial()


def test_concurrent_first_time_users_never_exceed_the_seats():
    lic = licensing()
    lic.install_trial()  # 5 seats
    # Each thread has its own Licensing (as separate servers would), sharing one event store.
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def first_job(i):
        mine = Licensing(lic.app, public_key=ISSUER.public_key(), identity=HERE, clock=Clock())
        barrier.wait()
        outcomes.append(mine.claim_seat(f"user{i}").outcome)

    threads = [threading.Thread(target=first_job, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(SEAT_ASSIGNED) == 5
    assert outcomes.count(SEAT_DENIED) == 15
    assert lic.get().seats_used == 5


def test_a_job_of_a_user_without_a_seat_is_denied_unless_unlicensed_tracking_is_on():
    clock = Clock()
    lic = licensing(clock)
    lic.install_trial()
    for i in range(5):
        assert lic.gate_job(f"user{i}").track
    gate = lic.gate_job("late")
    assert not gate.track and "no licence seat" in gate.reason
    lic.set_track_unlicensed(True, by="admin")
    gate = lic.gate_job("late")
    assert gate.track and gate.unlicensed
    clock.now += 16 * MICROS_PER_DAY  # the trial is over: nothing is tracked...
    lic.set_track_unlicensed(False, by="admin")
    assert lic.gate_job("user0").reason == "licence expired"


def test_a_released_seat_goes_to_the_next_user():
    lic = licensing()
    lic.install_trial()
    for i in range(5):
        lic.claim_seat(f"user{i}")
    assert lic.release_seat("USER0")
    assert lic.claim_seat("late").outcome == SEAT_ASSIGNED
    assert lic.claim_seat("user0").outcome == SEAT_DENIED  # the cache did not keep the freed seat


def test_activating_by_file_applies_the_licence_terms():
    lic = licensing()
    lic.install_trial()
    _, document = licence_file(seats=20)
    applied = lic.activate_file(document, "acme")
    licence = lic.get()
    assert (licence.type, licence.seats, licence.method, licence.company) == (SUITE, 20, "file", "Acme")
    assert applied.key == licence.key


def test_a_licence_for_another_server_is_refused_and_nothing_changes():
    lic = licensing()
    lic.install_trial()
    _, document = licence_file(host="elsewhere")
    with pytest.raises(LicenceRefused, match="issued for host 'elsewhere'"):
        lic.activate_file(document, "Acme")
    assert lic.get().type == "trial"


def test_activation_without_a_trial_installs_the_licence():
    lic = licensing()
    _, document = licence_file(type=DEVICE_MANAGEMENT, seats=3)
    lic.activate_file(document, "Acme")
    assert lic.get().type == DEVICE_MANAGEMENT
    gate = lic.gate_job("alice")
    assert not gate.track and "no job tracking" in gate.reason


def test_online_activation_checks_the_key_before_calling_and_the_answer_after():
    calls = []

    def service(url, *, key, company, identity):
        calls.append(url)
        return licence_file(method="online")[1]

    lic = licensing(activation_url="http://activation.test", fetch=service)
    key, _ = licence_file()
    with pytest.raises(LicenceRefused, match="sold to another company"):
        lic.activate_online(key, "Globex")
    with pytest.raises(LicenceRefused, match="mistyped"):
        # One character inside the signature changed (the last characters may carry only padding bits,
        # and a random key can already end in the replacement: both once let a "mistyped" key through).
        lic.activate_online(key[:-10] + ("B" if key[-10] != "B" else "C") + key[-9:], "Acme")
    assert calls == []
    lic.activate_online(key, "Acme")
    assert calls == ["http://activation.test"] and lic.get().method == "online"
    # An answer that is a *file* licence is not what an online activation returns: refused.
    lic2 = licensing(activation_url="http://x", fetch=lambda *a, **k: licence_file(method="file")[1])
    with pytest.raises(LicenceRefused, match="not issued online"):
        lic2.activate_online(key, "Acme")


def test_online_activation_needs_a_configured_service():
    with pytest.raises(ActivationServiceError, match="no activation service"):
        licensing().activate_online("PL1-X", "Acme")
