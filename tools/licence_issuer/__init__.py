"""The licence issuer: makes the Ed25519 key pair, signs licence keys and licence files.

Only the issuer holds the private key; PageLedger servers ship its public key. The same
signing functions back the reference online activation service (tools/activation_service).
"""
from __future__ import annotations

import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.licence_keys import (
    _KEY_CONTEXT, _LICENCE_CONTEXT, ACTIVATED_METHODS, LicenceKey, canonical, encode_key, key_terms,
    licence_document, licence_payload,
)


def make_key_pair() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def issue_key(private_key: Ed25519PrivateKey, *, type: str, seats: int, expires_at: int, company: str,
              key_id: str | None = None) -> str:
    """A licence key for `company`: what a customer buys and types into the setup wizard."""
    terms = key_terms(key_id or secrets.token_hex(6), type, seats, expires_at, company.strip())
    return encode_key(terms, private_key.sign(_KEY_CONTEXT + canonical(terms)))


def issue_licence(private_key: Ed25519PrivateKey, key: LicenceKey, *, host: str, mac: str, method: str,
                  issued_at: int) -> str:
    """A licence binding an (already verified) key to one server's host name and MAC."""
    if method not in ACTIVATED_METHODS:
        raise ValueError(f"method must be one of {ACTIVATED_METHODS}")
    payload = licence_payload(key, host=host, mac=mac, method=method, issued_at=issued_at)
    return licence_document(payload, private_key.sign(_LICENCE_CONTEXT + canonical(payload)))
