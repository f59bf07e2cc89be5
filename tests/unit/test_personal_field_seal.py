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


def test_a_job_id_whose_block_counter_would_pass_two_to_the_32_still_seals_and_opens():
    # The first 4 bytes of the job id are ChaCha20's block counter: from ff ff ff ff, a host and
    # document of more than 64 bytes run past 2**32, which the library refuses. The counter
    # wraps to 0 instead, and the job seals and opens like any other.
    from uuid import UUID

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    from adapters.personal_keys import _encode, open_text, seal_text

    key = os.urandom(32)
    jid = UUID(bytes=b"\xff\xff\xff\xff" + os.urandom(12))
    host, document = "PC-01", "A long document name that takes more than one block.pdf" * 3
    sealed = seal_fields(key, jid, host, document)
    assert FieldSealer()(key, jid, host, document) == sealed
    assert open_fields(key, jid, sealed) == (host, document)
    # The first block is the library's own; the rest is the keystream from counter 0.
    first = Cipher(algorithms.ChaCha20(key, jid.bytes), mode=None).encryptor().update(b"\0" * 64)
    rest = Cipher(algorithms.ChaCha20(key, b"\0\0\0\0" + jid.bytes[4:]), mode=None).encryptor().update(
        b"\0" * (len(sealed) - 64))
    assert sealed == bytes(a ^ b for a, b in zip(_encode((host, document)), first + rest))
    # A job id one block further from the end seals exactly as before (no wrap needed).
    near = UUID(bytes=(0xFFFF_FFFF - 10).to_bytes(4, "little") + jid.bytes[4:])
    assert seal_fields(key, near, host, document) == Cipher(algorithms.ChaCha20(key, near.bytes), mode=None) \
        .encryptor().update(_encode((host, document)))
    # The other sealed texts take the same path.
    assert open_text(key, seal_text(key, "x" * 500)) == "x" * 500
