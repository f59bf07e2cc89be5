"""Signed licence keys and licences: what is accepted, and each reason one is refused."""
from __future__ import annotations

import json

import pytest

from domain.licence import SUITE
from domain.units import MICROS_PER_DAY
from adapters.licence_keys import (
    HostIdentity, LicenceRefused, decode_key, load_public_key, public_key_pem, shipped_public_key,
    verify_licence,
)
from tools.licence_issuer import issue_key, issue_licence, make_key_pair

NOW = 1_764_000_000 * 1_000_000
HERE = HostIdentity(host="printsrv1", mac="00:11:22:33:44:55")


@pytest.fixture(scope="module")
def issuer():
    return make_key_pair()


def licence_for(issuer, *, company="Acme Ltd", host=HERE.host, mac=HERE.mac, expires_at=NOW + 365 * MICROS_PER_DAY):
    key = issue_key(issuer, type=SUITE, seats=25, expires_at=expires_at, company=company)
    terms = decode_key(key, issuer.public_key())
    return issue_licence(issuer, terms, host=host, mac=mac, method="file", issued_at=NOW)


def test_a_key_carries_its_signed_terms_and_survives_line_breaks_and_case(issuer):
    key = issue_key(issuer, type=SUITE, seats=25, expires_at=NOW + MICROS_PER_DAY, company="Acme Ltd", key_id="k1")
    pasted = key[:30].lower() + "\n  " + key[30:]
    terms = decode_key(pasted, issuer.public_key())
    assert (terms.key_id, terms.type, terms.seats, terms.company) == ("k1", SUITE, 25, "Acme Ltd")
    assert terms.expires_at == NOW + MICROS_PER_DAY - (NOW + MICROS_PER_DAY) % 1_000_000


def test_a_mistyped_key_is_refused(issuer):
    key = issue_key(issuer, type=SUITE, seats=25, expires_at=0, company="Acme")
    typo = key[:20] + ("A" if key[20] != "A" else "B") + key[21:]
    with pytest.raises(LicenceRefused, match="mistyped or was not issued"):
        decode_key(typo, issuer.public_key())
    with pytest.raises(LicenceRefused, match="must start with PL1-"):
        decode_key("XYZ-123", issuer.public_key())
    with pytest.raises(LicenceRefused, match="characters a key never has"):
        decode_key("PL1-!!!!", issuer.public_key())


def test_a_key_from_another_issuer_is_refused(issuer):
    key = issue_key(make_key_pair(), type=SUITE, seats=1000, expires_at=0, company="Acme")
    with pytest.raises(LicenceRefused, match="not issued by the licence issuer"):
        decode_key(key, issuer.public_key())


def test_a_licence_for_this_server_and_company_is_accepted(issuer):
    licence = verify_licence(licence_for(issuer), issuer.public_key(), company=" acme  LTD ",
                             identity=HostIdentity("PRINTSRV1", "00-11-22-33-44-55"), now=NOW)
    assert (licence.type, licence.seats, licence.host, licence.method) == (SUITE, 25, "printsrv1", "file")


def test_a_tampered_licence_is_refused(issuer):
    doc = json.loads(licence_for(issuer))
    doc["licence"]["seats"] = 100000
    with pytest.raises(LicenceRefused, match="changed after it was issued"):
        verify_licence(json.dumps(doc), issuer.public_key(), company="Acme Ltd", identity=HERE, now=NOW)


def test_a_licence_signed_by_someone_else_is_refused(issuer):
    with pytest.raises(LicenceRefused, match="not signed by the licence issuer"):
        verify_licence(licence_for(make_key_pair()), issuer.public_key(), company="Acme Ltd",
                       identity=HERE, now=NOW)


def test_an_expired_licence_is_refused(issuer):
    with pytest.raises(LicenceRefused, match="expired on 2025-"):
        verify_licence(licence_for(issuer, expires_at=NOW - MICROS_PER_DAY), issuer.public_key(),
                       company="Acme Ltd", identity=HERE, now=NOW)


def test_a_licence_for_another_company_is_refused(issuer):
    with pytest.raises(LicenceRefused, match="issued to the company 'Acme Ltd', not to 'Globex'"):
        verify_licence(licence_for(issuer), issuer.public_key(), company="Globex", identity=HERE, now=NOW)


def test_a_licence_for_another_host_or_mac_is_refused(issuer):
    for other in (HostIdentity("printsrv2", HERE.mac), HostIdentity(HERE.host, "00:11:22:33:44:56")):
        with pytest.raises(LicenceRefused, match="issued for host 'printsrv1'.*but this server is"):
            verify_licence(licence_for(issuer), issuer.public_key(), company="Acme Ltd", identity=other, now=NOW)


def test_garbage_is_not_a_licence(issuer):
    for junk in ("", "{}", "[1]", '{"format": "pageledger-licence/1", "licence": {}, "signature": "@@"}'):
        with pytest.raises(LicenceRefused, match="not a PageLedger licence"):
            verify_licence(junk, issuer.public_key(), company="Acme Ltd", identity=HERE, now=NOW)


def test_a_key_signature_cannot_be_passed_off_as_a_licence(issuer):
    # Same signer, but the key's signature covers another context: refused as tampered.
    key = issue_key(issuer, type=SUITE, seats=1, expires_at=0, company="Acme Ltd")
    doc = json.loads(licence_for(issuer))
    import base64
    raw = base64.b32decode(key[4:] + "=" * (-len(key[4:]) % 8))
    doc["signature"] = base64.b64encode(raw[-64:]).decode()
    with pytest.raises(LicenceRefused, match="signature does not match"):
        verify_licence(json.dumps(doc), issuer.public_key(), company="Acme Ltd", identity=HERE, now=NOW)


def test_public_keys_load_from_pem_or_raw_base64_and_one_ships_with_the_server(issuer):
    pem = public_key_pem(issuer.public_key())
    assert load_public_key(pem).public_bytes_raw() == issuer.public_key().public_bytes_raw()
    import base64
    raw = base64.b64encode(issuer.public_key().public_bytes_raw()).decode()
    assert load_public_key(raw).public_bytes_raw() == issuer.public_key().public_bytes_raw()
    assert len(shipped_public_key().public_bytes_raw()) == 32
    with pytest.raises(ValueError):
        load_public_key("not a key")
