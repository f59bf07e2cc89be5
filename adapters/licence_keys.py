"""Signed licence keys and licence files (Ed25519), and the checks the server makes on them.

Two signed things exist, each signed by the licence issuer's private key; the server ships only
the issuer's public key (configurable, so tests and private deployments use their own pair):

* A **licence key** is what a customer buys and types in: ``PL1-`` and the base32 text of its
  terms (key id, type, seats, expiry, company) followed by their signature. A mistyped or
  forged key is caught before anything is sent anywhere.
* A **licence** is what activates one server: the key's terms bound to that server's host name
  and MAC address, signed again. The online activation service answers with one; "Activate
  via File" loads the same document from a file made by the issuer for a server that has no
  network. Both go through `verify_licence`, so both are refused for the same reasons, each
  with a message an admin can act on.

Each signature covers a domain-separation prefix as well, so a key's signature can never be
passed off as a licence's.
"""
from __future__ import annotations

import base64
import binascii
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.licence import ACTIVATED_BY_FILE, ACTIVATED_ONLINE, LICENCE_TYPES
from domain.units import from_iso, iso

ACTIVATED_METHODS = (ACTIVATED_ONLINE, ACTIVATED_BY_FILE)

KEY_PREFIX = "PL1-"
LICENCE_FORMAT = "pageledger-licence/1"
_KEY_CONTEXT = b"pageledger-key/1\n"
_LICENCE_CONTEXT = b"pageledger-licence/1\n"
_SIGNATURE_BYTES = 64

# The issuer public key shipped with the server. Replace it (setting licence_public_key) to
# trust another issuer; tests pass their own.
SHIPPED_PUBLIC_KEY_PATH = Path(__file__).with_name("licence_issuer.pub")


class LicenceRefused(ValueError):
    """A key or licence that must not be applied; the message says why, for the admin."""


@dataclass(frozen=True)
class LicenceKey:
    """The terms a licence key grants, as signed by the issuer."""

    key: str  # the key exactly as issued (PL1-...)
    key_id: str
    type: str
    seats: int
    expires_at: int  # µs since the epoch, 0 = never
    company: str


@dataclass(frozen=True)
class VerifiedLicence:
    """A licence whose signature, company, host, MAC and expiry were checked."""

    key: str
    key_id: str
    type: str
    seats: int
    expires_at: int
    company: str
    host: str
    mac: str
    method: str  # "online" or "file"
    issued_at: int


@dataclass(frozen=True)
class HostIdentity:
    """What a licence is bound to; the server shows it on the "Activate via File" page."""

    host: str
    mac: str


# --- keys and encodings ---------------------------------------------------------------------

def load_public_key(text: str | bytes) -> Ed25519PublicKey:
    """A PEM public key, or the raw 32 bytes in base64."""
    data = text.encode() if isinstance(text, str) else text
    try:
        if b"BEGIN PUBLIC KEY" in data:
            key = serialization.load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not an Ed25519 public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the licence issuer key must be an Ed25519 key")
    return key


def shipped_public_key() -> Ed25519PublicKey:
    return load_public_key(SHIPPED_PUBLIC_KEY_PATH.read_bytes())


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the licence issuer key must be an Ed25519 key")
    return key


def canonical(payload: dict) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def same_company(a: str, b: str) -> bool:
    """Company names match regardless of case and spacing ("ACME  Ltd" is "Acme Ltd")."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def normalise_mac(mac: str) -> str:
    digits = "".join(c for c in mac.lower() if c in "0123456789abcdef")
    if len(digits) != 12:
        return mac.strip().lower()
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


# --- licence keys ---------------------------------------------------------------------------

def key_terms(key_id: str, type: str, seats: int, expires_at: int, company: str) -> dict:
    if type not in LICENCE_TYPES:
        raise ValueError(f"unknown licence type {type!r}")
    return {"i": key_id, "t": type, "s": int(seats), "e": iso(expires_at, whole_seconds=True), "c": company}


def encode_key(terms: dict, signature: bytes) -> str:
    raw = canonical(terms) + signature
    return KEY_PREFIX + base64.b32encode(raw).decode().rstrip("=")


def decode_key(key: str, public_key: Ed25519PublicKey) -> LicenceKey:
    """The terms of a licence key, if the issuer signed it; else LicenceRefused."""
    text = "".join(key.split())  # keys are often pasted with line breaks
    if not text.upper().startswith(KEY_PREFIX):
        raise LicenceRefused(f"the licence key must start with {KEY_PREFIX}")
    body = text[len(KEY_PREFIX):].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise LicenceRefused("the licence key is mistyped: it contains characters a key never has") from None
    payload, signature = raw[:-_SIGNATURE_BYTES], raw[-_SIGNATURE_BYTES:]
    try:
        public_key.verify(signature, _KEY_CONTEXT + payload)
        terms = json.loads(payload)
    except (InvalidSignature, ValueError):
        raise LicenceRefused(
            "the licence key is not valid: it was mistyped or was not issued by the licence issuer") from None
    return LicenceKey(key=KEY_PREFIX + body, key_id=str(terms["i"]), type=terms["t"], seats=int(terms["s"]),
                      expires_at=from_iso(terms["e"]), company=terms["c"])


# --- licences -------------------------------------------------------------------------------

def licence_payload(key: LicenceKey, *, host: str, mac: str, method: str, issued_at: int) -> dict:
    return {
        "key": key.key, "key_id": key.key_id, "type": key.type, "seats": key.seats,
        "expires_at": iso(key.expires_at, whole_seconds=True), "company": key.company,
        "host": host, "mac": normalise_mac(mac), "method": method, "issued_at": iso(issued_at, whole_seconds=True),
    }


def licence_document(payload: dict, signature: bytes) -> str:
    return json.dumps({"format": LICENCE_FORMAT, "licence": payload,
                       "signature": base64.b64encode(signature).decode()}, indent=2, sort_keys=True)


def verify_licence(document: str | bytes, public_key: Ed25519PublicKey, *, company: str,
                   identity: HostIdentity, now: int) -> VerifiedLicence:
    """Check a licence (file or online answer) for this server, or raise LicenceRefused.

    Checked in this order so the message names the first thing to fix: it is a licence at
    all, its signature holds (nothing altered), it is for the company the admin named, for
    this host and MAC, and has not expired.
    """
    try:
        doc = json.loads(document)
        if doc.get("format") != LICENCE_FORMAT:
            raise ValueError("format")
        payload = doc["licence"]
        signature = base64.b64decode(doc["signature"], validate=True)
        if not isinstance(payload, dict):
            raise ValueError("licence")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise LicenceRefused("this is not a PageLedger licence file (or it is damaged)") from None
    try:
        public_key.verify(signature, _LICENCE_CONTEXT + canonical(payload))
    except InvalidSignature:
        raise LicenceRefused(
            "the licence's signature does not match: it was changed after it was issued, "
            "or it was not signed by the licence issuer") from None
    try:
        licence = VerifiedLicence(
            key=str(payload["key"]), key_id=str(payload["key_id"]), type=str(payload["type"]),
            seats=int(payload["seats"]), expires_at=from_iso(payload["expires_at"]),
            company=str(payload["company"]), host=str(payload["host"]), mac=str(payload["mac"]),
            method=str(payload["method"]), issued_at=from_iso(payload["issued_at"]))
    except (KeyError, TypeError, ValueError):
        raise LicenceRefused("the licence is signed but incomplete: ask the issuer for a new one") from None
    if licence.type not in LICENCE_TYPES or licence.method not in ACTIVATED_METHODS:
        raise LicenceRefused(f"the licence is for an unknown licence type {licence.type!r} or method")
    if not same_company(licence.company, company):
        raise LicenceRefused(
            f"the licence was issued to the company {licence.company!r}, not to {company!r}: "
            "enter the company name exactly as on your order")
    if licence.host.lower() != identity.host.lower() or normalise_mac(licence.mac) != normalise_mac(identity.mac):
        raise LicenceRefused(
            f"the licence was issued for host {licence.host!r} (MAC {licence.mac}), but this server "
            f"is {identity.host!r} (MAC {normalise_mac(identity.mac)}): request a licence for this server")
    if licence.expires_at and licence.expires_at <= now:
        raise LicenceRefused(f"the licence expired on {iso(licence.expires_at)}")
    return licence


# --- this server ----------------------------------------------------------------------------

def this_host() -> HostIdentity:
    """Host name and the MAC of the first non-loopback interface (what licences are bound to)."""
    mac = ""
    net = Path("/sys/class/net")
    if net.is_dir():
        for iface in sorted(net.iterdir()):
            if iface.name == "lo":
                continue
            try:
                address = (iface / "address").read_text().strip()
            except OSError:
                continue
            if address and address != "00:00:00:00:00:00":
                mac = address
                break
    if not mac:
        import uuid
        node = uuid.getnode()
        mac = ":".join(f"{(node >> s) & 0xff:02x}" for s in range(40, -1, -8))
    return HostIdentity(host=socket.gethostname(), mac=normalise_mac(mac))


class ActivationServiceError(RuntimeError):
    """The online activation service could not be reached or refused the key."""


def fetch_online_licence(url: str, *, key: str, company: str, identity: HostIdentity,
                         timeout: float = 15.0) -> str:
    """Send key + company + host to the activation service; its answer is a licence document.

    The answer is not trusted: the caller verifies it exactly as a licence file.
    """
    body = json.dumps({"key": key, "company": company, "host": identity.host, "mac": identity.mac}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/activate", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - admin-configured URL
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("title", "")
        except ValueError:
            detail = ""
        raise ActivationServiceError(
            f"the activation service refused the key ({exc.code}){': ' + detail if detail else ''}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ActivationServiceError(f"the activation service at {url} could not be reached: {exc}") from None
    licence = answer.get("licence") if isinstance(answer, dict) else None
    if not isinstance(licence, str):
        raise ActivationServiceError("the activation service answered without a licence")
    return licence
