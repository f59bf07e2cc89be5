"""Sealing the personal fields of a batch of jobs with one cipher context per key gives the very
bytes that sealing each job on its own gives (the stored format is unchanged), and they open."""
from __future__ import annotations

import os

from adapters.personal_keys import FieldSealer, open_fields, seal_fields
from domain.jobs import job_id


def test_a_batch_sealer_gives_each_job_the_bytes_a_seal_of_its_own_gives():
    keys = [os.urandom(32) for _ in range(3)]
    sealer = FieldSealer()
    for n in range(60):  # the keys interleaved, as a batch's users are
        key, jid = keys[n % 3], job_id("srv", f"legacy:pa6:{n}")
        host, document = f"PC-{n:02d}", "Quarterly report ✓.pdf" * (n % 4)
        sealed = sealer(key, jid, host, document)
        assert sealed == seal_fields(key, jid, host, document)
        assert open_fields(key, jid, sealed) == (host, document)


def test_a_batch_sealer_never_lends_one_persons_key_to_another():
    alice, bob = os.urandom(32), os.urandom(32)
    sealer = FieldSealer()
    jid = job_id("srv", "k1")
    sealed_for_alice = sealer(alice, jid, "PC-01", "alice.pdf")
    sealed_for_bob = sealer(bob, jid, "PC-01", "alice.pdf")
    assert sealed_for_alice != sealed_for_bob
    assert open_fields(bob, jid, sealed_for_bob) == ("PC-01", "alice.pdf")
