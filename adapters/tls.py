"""The server's TLS certificate: the admin's own, or a self-signed one made on first start.

The product modelled on serves its console over HTTPS from the first start. An admin who has a
certificate configures it (`tls_cert_file`, `tls_key_file`); otherwise the first start makes a
self-signed one under the data directory (key 0600), valid for this host's names and addresses,
and prints its SHA-256 fingerprint so that whoever opens the console can check what the
browser shows. The same files are used on every later start, so the fingerprint stays.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.private_files import PRIVATE_FILE, make_private_directory

SELF_SIGNED_CERT = "tls-cert.pem"
SELF_SIGNED_KEY = "tls-key.pem"
SELF_SIGNED_DAYS = 825  # the longest validity browsers accept for a server certificate


class CertificateError(ValueError):
    """The configured certificate or key cannot be used (missing, unreadable, not a pair)."""


@dataclass(frozen=True)
class ServerCertificate:
    cert_file: Path
    key_file: Path
    fingerprint: str  # SHA-256, colon-separated upper-case hex, as browsers show it
    self_signed: bool
    created: bool = False  # made by this start


def fingerprint_of(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def server_certificate(data_dir: Path, cert_file: str = "", key_file: str = "",
                       names: tuple[str, ...] = ()) -> ServerCertificate:
    """The admin's pair when configured (checked now, not at the first browser), else the
    self-signed pair under `data_dir`, made if missing."""
    if cert_file or key_file:
        if not (cert_file and key_file):
            raise CertificateError("set both tls_cert_file and tls_key_file (PAGELEDGER_TLS_CERT_FILE, "
                                   "PAGELEDGER_TLS_KEY_FILE), or neither for a self-signed certificate")
        cert, key = Path(cert_file), Path(key_file)
        _check_pair(cert, key)
        return ServerCertificate(cert, key, fingerprint_of(cert.read_bytes()), self_signed=False)
    cert, key = data_dir / SELF_SIGNED_CERT, data_dir / SELF_SIGNED_KEY
    created = False
    if not (cert.exists() and key.exists()):
        make_private_directory(data_dir)
        _make_self_signed(cert, key, names or host_names())
        created = True
    _check_pair(cert, key)
    return ServerCertificate(cert, key, fingerprint_of(cert.read_bytes()), self_signed=True, created=created)


def server_context(certificate: ServerCertificate) -> ssl.SSLContext:
    """TLS 1.2 or later with the library's default ciphers; no client certificates."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(certificate.cert_file), keyfile=str(certificate.key_file))
    context.set_alpn_protocols(["http/1.1"])
    return context


def host_names() -> tuple[str, ...]:
    """What a browser may call this host: its names, localhost and loopback addresses."""
    names = {"localhost", socket.gethostname(), socket.getfqdn(), "127.0.0.1", "::1"}
    try:
        names.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
    except OSError:
        pass
    return tuple(sorted(n for n in names if n))


def _make_self_signed(cert_path: Path, key_path: Path, names: tuple[str, ...]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, socket.gethostname()[:64] or "pageledger"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PageLedger (self-signed)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    _write(key_path, key_bytes, PRIVATE_FILE)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _check_pair(cert: Path, key: Path) -> None:
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(f"cannot use the TLS certificate {cert} with key {key}: {exc}") from None
