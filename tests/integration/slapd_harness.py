"""A private OpenLDAP slapd for tests: installed when missing, started on free loopback ports.

It follows the recipe measured in /work/shared/PEERS.md: a throwaway slapd.conf in a temp
directory (schemas core, cosine, nis, inetorgperson in that order, back_mdb), data loaded with
slapadd, slapd kept in the foreground (``-d 0``) so its pid is ours, stopped with SIGTERM.
It listens on ldap:// and ldaps:// with a throwaway CA, so StartTLS and LDAPS are real.

The directory holds users in two OUs (Staff, Contractors), a group (cn=printing), a service
account, and an "AD" OU whose entries carry sAMAccountName and userPrincipalName from a small
test schema, so AD-style lookups run against a real server (not against real AD).

Usable on its own: ``python tests/integration/slapd_harness.py`` starts one and prints its URL.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DN = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=pageledger,ou=Services,{BASE_DN}"
SERVICE_PASSWORD = "service-secret"
STAFF = f"ou=Staff,{BASE_DN}"
CONTRACTORS = f"ou=Contractors,{BASE_DN}"
AD_OU = f"ou=AD,{BASE_DN}"
GROUP_DN = f"cn=printing,ou=Groups,{BASE_DN}"
PACKAGES = ("slapd", "ldap-utils")
BINARIES = ("/usr/sbin/slapd", "/usr/sbin/slapadd", "/usr/sbin/slaptest")

# login -> (ou, full name, mail, department, card, pin, password)
USERS = {
    "alice": (STAFF, "Alice Archer", "alice@example.org", "Finance", "1001", "4321", "alice-pw-1"),
    "bob": (STAFF, "Bob Baker", "bob@example.org", "Sales", "1002", "5555", "bob-pw-22"),
    "dave": (STAFF, "Dave Dyer", "dave@example.org", "Sales", "1002", "5555", "dave-pw-333"),
    "carol": (CONTRACTORS, "Carol Cole", "carol@example.org", "IT", "2001", "7777", "carol-pw-4444"),
    "o(dd)*name": (CONTRACTORS, "Odd Name", "odd@example.org", "IT", "2002", "", "odd-pw-55555"),
}
GROUP_MEMBERS = ("alice", "carol")
# sAMAccountName -> (userPrincipalName, display name, department, password)
AD_USERS = {
    "frank": ("frank@corp.example", "Frank Fisher", "Legal", "frank-pw-1"),
    "grace": ("grace@corp.example", "Grace Green", "Legal", "grace-pw-2"),
}

_AD_SCHEMA = """
attributetype ( 1.3.6.1.4.1.32473.1.1 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.2 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.3 NAME 'department'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.2.1 NAME 'pageledgerAdUser' SUP top AUXILIARY
  MAY ( sAMAccountName $ userPrincipalName $ department ) )
"""


class SlapdUnavailable(RuntimeError):
    """slapd is not installed and could not be installed here."""


def ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def ensure_installed() -> None:
    """Install slapd and ldap-utils with apt when they are missing (root only)."""
    if all(Path(b).exists() for b in BINARIES):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SlapdUnavailable("slapd is missing and apt-get cannot be run here (need root on Debian)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SlapdUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr[-500:]}")
    if not all(Path(b).exists() for b in BINARIES):
        raise SlapdUnavailable("slapd was installed but its binaries are not in /usr/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PageLedger test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def _ldif() -> str:
    parts = [f"""dn: {BASE_DN}
objectClass: dcObject
objectClass: organization
o: Example
dc: example
"""]
    for ou in ("Staff", "Contractors", "Groups", "Services", "AD"):
        parts.append(f"dn: ou={ou},{BASE_DN}\nobjectClass: organizationalUnit\nou: {ou}\n")
    parts.append(f"""dn: {SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: pageledger
userPassword: {ssha(SERVICE_PASSWORD)}
""")
    for login, (ou, name, mail, dept, card, pin, password) in USERS.items():
        entry = [f"dn: uid={_rdn_escape(login)},{ou}", "objectClass: inetOrgPerson", f"uid: {login}",
                 f"cn: {name}", f"sn: {name.split()[-1]}", f"mail: {mail}", f"departmentNumber: {dept}",
                 f"employeeNumber: {card}", f"userPassword: {ssha(password)}"]
        if pin:
            entry.append(f"pager: {pin}")
        parts.append("\n".join(entry) + "\n")
    members = "\n".join(f"member: uid={m},{USERS[m][0]}" for m in GROUP_MEMBERS)
    parts.append(f"dn: {GROUP_DN}\nobjectClass: groupOfNames\ncn: printing\n{members}\n")
    for sam, (upn, name, dept, password) in AD_USERS.items():
        parts.append("\n".join([
            f"dn: cn={name},{AD_OU}", "objectClass: inetOrgPerson", "objectClass: pageledgerAdUser",
            f"cn: {name}", f"sn: {name.split()[-1]}", f"displayName: {name}", f"sAMAccountName: {sam}",
            f"userPrincipalName: {upn}", f"department: {dept}", f"mail: {upn}",
            f"userPassword: {ssha(password)}"]) + "\n")
    return "\n".join(parts)


def _rdn_escape(value: str) -> str:
    # Only DN-special characters need escaping in an RDN; parentheses and * are ordinary there.
    return "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)


@dataclass
class Slapd:
    """One running private slapd. Use `start()`/`stop()` or as a context manager."""

    workdir: Path
    port: int = 0
    ldaps_port: int = 0
    pid: int = 0
    ca_file: Path | None = None
    _process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 15.0) -> "Slapd":
        ensure_installed()
        work = self.workdir
        (work / "data").mkdir(parents=True, exist_ok=True)
        self.ca_file, cert, key = _make_tls(work)
        (work / "ad.schema").write_text(_AD_SCHEMA)
        rootpw = ssha(ROOT_PASSWORD)
        conf = work / "slapd.conf"
        conf.write_text(f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include {work}/ad.schema
pidfile {work}/slapd.pid
argsfile {work}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {self.ca_file}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
sizelimit unlimited
database mdb
maxsize 104857600
suffix "{BASE_DN}"
rootdn "{ROOT_DN}"
rootpw {rootpw}
directory {work}/data
index objectClass eq
index uid eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
""")
        (work / "data.ldif").write_text(_ldif())
        for cmd in (["/usr/sbin/slaptest", "-f", str(conf), "-u"],
                    ["/usr/sbin/slapadd", "-f", str(conf), "-l", str(work / "data.ldif")]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{cmd[0]} failed: {done.stderr[-1500:]}")
        self.port, self.ldaps_port = free_port(), free_port()
        urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
        self._process = subprocess.Popen(["/usr/sbin/slapd", "-f", str(conf), "-h", urls, "-d", "0"],
                                         stdout=subprocess.DEVNULL, stderr=open(work / "slapd.log", "wb"))
        self.pid = self._process.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"slapd exited at once: {(work / 'slapd.log').read_text()[-1500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", self.ldaps_port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("slapd did not start listening in time")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None

    def __enter__(self) -> "Slapd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- changes made by tests, as the directory's administrator ------------------------------

    def _admin(self):
        import ldap3
        return ldap3.Connection(ldap3.Server("127.0.0.1", port=self.port), ROOT_DN, ROOT_PASSWORD, auto_bind=True)

    def delete(self, dn: str) -> None:
        conn = self._admin()
        try:
            if not conn.delete(dn):
                raise RuntimeError(f"cannot delete {dn}: {conn.result}")
        finally:
            conn.unbind()

    def modify(self, dn: str, **values: str) -> None:
        import ldap3
        conn = self._admin()
        try:
            if not conn.modify(dn, {k: [(ldap3.MODIFY_REPLACE, [v])] for k, v in values.items()}):
                raise RuntimeError(f"cannot modify {dn}: {conn.result}")
        finally:
            conn.unbind()

    def add_user(self, login: str, ou: str, full_name: str, password: str, **extra: str) -> str:
        conn = self._admin()
        dn = f"uid={_rdn_escape(login)},{ou}"
        try:
            attrs = {"uid": login, "cn": full_name, "sn": full_name.split()[-1], "userPassword": ssha(password),
                     **extra}
            if not conn.add(dn, ["inetOrgPerson"], attrs):
                raise RuntimeError(f"cannot add {dn}: {conn.result}")
        finally:
            conn.unbind()
        return dn


def user_dn(login: str) -> str:
    return f"uid={_rdn_escape(login)},{USERS[login][0]}"


if __name__ == "__main__":
    with Slapd(Path(tempfile.mkdtemp(prefix="pageledger-slapd-"))) as server:
        print(f"slapd pid {server.pid} on {server.url} and ldaps://127.0.0.1:{server.ldaps_port}/ "
              f"(CA {server.ca_file}); Ctrl-C stops it")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
