"""Directory sources: where users come from and where their passwords are checked.

The setup wizard's "network type" picks one:

* ``LdapDirectory`` — Active Directory or any LDAP server (OpenLDAP, 389-DS) through ldap3:
  a service account binds and searches users under one or more base DNs (an OU each),
  optionally only the members of one group; a user logs in by binding as themselves.
  AD users are found by ``sAMAccountName`` or ``userPrincipalName``, OpenLDAP ones by ``uid``.
  Plain LDAP, LDAPS and StartTLS; NTLM binds for Windows NT domains (see ``NTLM`` below).
* ``LocalDirectory`` — accounts PageLedger keeps itself, with argon2 password hashes (the
  stand-in for "Windows peer to peer" networks without a directory).

Every value that comes from a person (a login typed on the login page, a group DN typed in
the wizard) goes into a filter only through ``escape_filter_chars``: ``*)(uid=*`` is a login
that matches nobody, never everyone. Passwords, bind passwords and PINs are never logged and
never appear in a repr.

NTLM: ldap3 implements the NTLM bind (``authentication=NTLM``, user ``DOMAIN\\login``). It
can only be exercised against a real Windows domain controller, which cannot run on the
machines where PageLedger is tested, so that path is untested here.
"""
from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from typing import Callable, Iterator

import ldap3
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from domain.users import LOCAL_SOURCE

log = logging.getLogger(__name__)

OPENLDAP = "openldap"
ACTIVE_DIRECTORY = "ad"
SECURITY_NONE = "none"
SECURITY_LDAPS = "ldaps"
SECURITY_STARTTLS = "starttls"
SIMPLE = "simple"
NTLM = "ntlm"

# AD's "member of, directly or through nested groups" matching rule.
_AD_IN_CHAIN = "1.2.840.113556.1.4.1941"


class DirectoryError(RuntimeError):
    """The directory could not be reached or searched (a configuration or network problem)."""


class DirectoryUnreachable(DirectoryError):
    """No LDAP conversation happened: refused, timed out, not LDAP, TLS failed to start."""


class AuthenticationFailed(Exception):
    """Wrong login or password. Deliberately does not say which."""


@dataclass(frozen=True)
class DirectoryUser:
    """A person as the directory describes them, in PageLedger's terms."""

    login: str
    full_name: str = ""
    email: str = ""
    department: str = ""
    card: str = ""
    pin: str = field(default="", repr=False)  # a secret: never shown, never logged
    dn: str = ""

    @property
    def profile(self) -> dict[str, str]:
        return {"full_name": self.full_name, "email": self.email, "department": self.department}


@dataclass(frozen=True)
class AttributeMap:
    """Which directory attribute holds each PageLedger field ("" = not imported)."""

    full_name: str = "cn"
    email: str = "mail"
    department: str = "departmentNumber"
    card: str = ""
    pin: str = ""

    @classmethod
    def for_kind(cls, kind: str) -> "AttributeMap":
        if kind == ACTIVE_DIRECTORY:
            return cls(full_name="displayName", email="mail", department="department")
        return cls()


class LdapConfigError(ValueError):
    """Directory settings that cannot work; `problems` names each field and why."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class LdapConfig:
    """Connection and search settings of an LDAP or AD directory, as the setup wizard takes them."""

    host: str
    base_dns: tuple[str, ...]  # each is searched (subtree): the domain, or one OU each
    bind_dn: str = ""  # service account; "" = anonymous search (OpenLDAP only, usually)
    bind_password: str = field(default="", repr=False)
    port: int = 0  # 0: 389, or 636 for LDAPS
    kind: str = OPENLDAP
    security: str = SECURITY_NONE
    ca_file: str = ""  # trust these CAs for LDAPS/StartTLS ("" = the system's)
    verify_certificate: bool = True
    group_dn: str = ""  # only members of this group ("" = everyone found)
    user_filter: str = ""  # extra filter the admin wrote, e.g. (departmentNumber=7)
    person_filter: str = ""  # what a user entry is; "" = per kind (inetOrgPerson, or AD's person+user)
    login_attributes: tuple[str, ...] = ()  # () = per kind: uid, or sAMAccountName + userPrincipalName
    attributes: AttributeMap | None = None
    authentication: str = SIMPLE  # or NTLM (bind_dn then is DOMAIN\\account)
    ntlm_domain: str = ""  # NTLM: users log in as DOMAIN\\login
    timeout: float = 10.0
    source: str = "ldap"  # name of this directory source (part of every user's id)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise LdapConfigError(problems)

    def problems(self) -> dict[str, str]:
        """Each bad setting and why; empty when the settings can be tried."""
        bad: dict[str, str] = {}
        if not self.host or any(c in self.host for c in "/ \t"):
            bad["host"] = "a host name or address, without ldap:// or a path"
        if not 0 <= self.port <= 65535:
            bad["port"] = "a TCP port, 1-65535 (0: the default for the security)"
        if self.kind not in (OPENLDAP, ACTIVE_DIRECTORY):
            bad["kind"] = f"one of {OPENLDAP}, {ACTIVE_DIRECTORY}"
        if self.security not in (SECURITY_NONE, SECURITY_LDAPS, SECURITY_STARTTLS):
            bad["security"] = f"one of {SECURITY_NONE}, {SECURITY_LDAPS}, {SECURITY_STARTTLS}"
        if self.authentication not in (SIMPLE, NTLM):
            bad["authentication"] = f"one of {SIMPLE}, {NTLM}"
        if not self.base_dns:
            bad["base_dns"] = "at least one base DN to search"
        for name, dns in (("base_dns", self.base_dns), ("group_dn", (self.group_dn,) if self.group_dn else ())):
            for dn in dns:
                try:
                    parse_dn(dn)
                except LDAPException:
                    bad[name] = f"{dn!r} is not a distinguished name"
        if not self.source.strip() or self.source.strip().lower() == LOCAL_SOURCE:
            # A sync changes only the users of its source: one named "local" would deactivate
            # the accounts PageLedger keeps itself.
            bad["source"] = f"a name for this directory other than {LOCAL_SOURCE!r} (PageLedger's own accounts)"
        for name in ("user_filter", "person_filter"):
            value = getattr(self, name)
            if value and not (value.startswith("(") and value.endswith(")")):
                bad[name] = "an LDAP filter in parentheses, e.g. (departmentNumber=7)"
        return bad

    @property
    def effective_port(self) -> int:
        return self.port or (636 if self.security == SECURITY_LDAPS else 389)

    @property
    def effective_login_attributes(self) -> tuple[str, ...]:
        if self.login_attributes:
            return self.login_attributes
        return ("sAMAccountName", "userPrincipalName") if self.kind == ACTIVE_DIRECTORY else ("uid",)

    @property
    def effective_attributes(self) -> AttributeMap:
        return self.attributes or AttributeMap.for_kind(self.kind)

    @property
    def effective_person_filter(self) -> str:
        if self.person_filter:
            return self.person_filter
        if self.kind == ACTIVE_DIRECTORY:
            return "(&(objectCategory=person)(objectClass=user))"
        return "(objectClass=inetOrgPerson)"


class LdapDirectory:
    """Users of an LDAP or Active Directory server, and password checks by binding as them."""

    def __init__(self, config: LdapConfig) -> None:
        self.config = config
        self.source = config.source

    # --- connections ------------------------------------------------------------------------

    def _server(self) -> ldap3.Server:
        cfg = self.config
        tls = None
        if cfg.security in (SECURITY_LDAPS, SECURITY_STARTTLS):
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED if cfg.verify_certificate else ssl.CERT_NONE,
                            ca_certs_file=cfg.ca_file or None, version=ssl.PROTOCOL_TLS_CLIENT)
        return ldap3.Server(cfg.host, port=cfg.effective_port, use_ssl=cfg.security == SECURITY_LDAPS,
                            tls=tls, get_info=ldap3.NONE, connect_timeout=max(1, int(cfg.timeout)))

    def _connect(self, user: str | None, password: str | None, *, ntlm: bool = False) -> ldap3.Connection:
        """An open, bound connection; raises LDAPException subclasses on failure."""
        cfg = self.config
        kwargs: dict = {"receive_timeout": max(1, int(cfg.timeout)), "raise_exceptions": False, "read_only": True}
        if ntlm:
            kwargs["authentication"] = ldap3.NTLM
        elif user:
            kwargs["authentication"] = ldap3.SIMPLE
        else:
            kwargs["authentication"] = ldap3.ANONYMOUS
        conn = ldap3.Connection(self._server(), user=user or None, password=password or None, **kwargs)
        conn.open()
        if cfg.security == SECURITY_STARTTLS and not conn.start_tls():
            conn.unbind()
            raise DirectoryError(f"StartTLS was refused by {cfg.host}: {conn.result.get('description')}")
        if not conn.bind():
            result = conn.result or {}
            conn.unbind()
            raise _BindRefused(result.get("description", "bind refused"))
        return conn

    def _service_connection(self) -> ldap3.Connection:
        cfg = self.config
        try:
            return self._connect(cfg.bind_dn, cfg.bind_password, ntlm=cfg.authentication == NTLM)
        except _BindRefused as exc:
            raise DirectoryError(f"the service account {cfg.bind_dn!r} could not bind: {exc}") from None
        except LDAPException as exc:
            raise DirectoryUnreachable(f"cannot reach {cfg.host}:{cfg.effective_port}: {_describe(exc)}") from None

    def test_connection(self) -> str:
        """The setup wizard's "test connection": bind, and count users, or say what is wrong."""
        count = sum(1 for _ in self.users())
        return f"connected to {self.config.host}:{self.config.effective_port}; {count} users found"

    # --- searching --------------------------------------------------------------------------

    def _filter(self, extra: str = "") -> str:
        parts = [self.config.effective_person_filter]
        if self.config.user_filter:
            parts.append(self.config.user_filter)
        if self.config.group_dn and self.config.kind == ACTIVE_DIRECTORY:
            parts.append(f"(memberOf:{_AD_IN_CHAIN}:={escape_filter_chars(self.config.group_dn)})")
        if extra:
            parts.append(extra)
        return "(&" + "".join(parts) + ")"

    def login_filter(self, login: str) -> str:
        """Filter that finds one login; the login is escaped, so it can never widen the search."""
        value = escape_filter_chars(login.strip())
        terms = [f"({attr}={value})" for attr in self.config.effective_login_attributes]
        return terms[0] if len(terms) == 1 else "(|" + "".join(terms) + ")"

    def _attribute_names(self) -> list[str]:
        mapped = self.config.effective_attributes
        names = {*self.config.effective_login_attributes, mapped.full_name, mapped.email,
                 mapped.department, mapped.card, mapped.pin}
        return sorted(n for n in names if n)

    def _group_members(self, conn: ldap3.Connection) -> set[str] | None:
        """DNs (lower-cased) of the configured group's members, for directories without memberOf."""
        if not self.config.group_dn or self.config.kind == ACTIVE_DIRECTORY:
            return None
        ok = conn.search(self.config.group_dn, "(objectClass=*)", search_scope=ldap3.BASE,
                         attributes=["member", "uniqueMember", "memberUid"])
        if not ok or not conn.entries:
            raise DirectoryError(f"the group {self.config.group_dn!r} was not found")
        attrs = conn.entries[0].entry_attributes_as_dict
        members = {str(dn).lower() for dn in [*attrs.get("member", []), *attrs.get("uniqueMember", [])]}
        # posixGroup lists logins rather than DNs; keep them marked so both can be matched.
        members |= {"uid:" + str(uid).lower() for uid in attrs.get("memberUid", [])}
        return members

    def _search(self, conn: ldap3.Connection, search_filter: str) -> Iterator[DirectoryUser]:
        members = self._group_members(conn)
        for base in self.config.base_dns:
            entries = conn.extend.standard.paged_search(
                base, search_filter, search_scope=ldap3.SUBTREE, attributes=self._attribute_names(),
                paged_size=500, generator=True)
            try:
                for entry in entries:
                    if entry.get("type") != "searchResEntry":
                        continue
                    user = self._to_user(entry["dn"], entry["attributes"])
                    if user is None:
                        continue
                    if members is not None and entry["dn"].lower() not in members \
                            and "uid:" + user.login.lower() not in members:
                        continue
                    yield user
            except LDAPException as exc:
                raise DirectoryError(f"searching {base!r} failed: {_describe(exc)}") from None
            if conn.result and conn.result.get("result") not in (0, None):
                raise DirectoryError(f"searching {base!r} failed: {conn.result.get('description')} "
                                     f"{conn.result.get('message', '')}".strip())

    def _to_user(self, dn: str, attrs: dict) -> DirectoryUser | None:
        def first(name: str) -> str:
            if not name:
                return ""
            value = attrs.get(name)
            if isinstance(value, list):
                value = value[0] if value else ""
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            return str(value or "").strip()

        login = next((first(a) for a in self.config.effective_login_attributes if first(a)), "")
        if not login:
            return None
        mapped = self.config.effective_attributes
        return DirectoryUser(login=login, full_name=first(mapped.full_name), email=first(mapped.email),
                             department=first(mapped.department), card=first(mapped.card),
                             pin=first(mapped.pin), dn=dn)

    def users(self) -> Iterator[DirectoryUser]:
        """Every user the configuration selects, across all base DNs (paged, so big OUs work)."""
        conn = self._service_connection()
        try:
            yield from self._search(conn, self._filter())
        finally:
            conn.unbind()

    def find(self, login: str) -> DirectoryUser | None:
        if not login.strip():
            return None
        conn = self._service_connection()
        try:
            found = list(self._search(conn, self._filter(self.login_filter(login))))
        finally:
            conn.unbind()
        # Two entries for one login (e.g. in two OUs) is ambiguous: nobody is let in as either.
        return found[0] if len(found) == 1 else None

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, login: str, password: str) -> DirectoryUser:
        """The user, if `password` is theirs: found by the service account, then bound as.

        An empty password is refused before any bind: LDAP treats a simple bind with a DN and
        no password as an anonymous ("unauthenticated") bind, which succeeds.
        """
        if not login.strip() or not password:
            raise AuthenticationFailed()
        user = self.find(login)
        if user is None:
            raise AuthenticationFailed()
        if self.config.authentication == NTLM:
            domain = self.config.ntlm_domain or self.config.bind_dn.split("\\", 1)[0]
            who, ntlm = f"{domain}\\{user.login}", True
        else:
            who, ntlm = user.dn, False
        try:
            self._connect(who, password, ntlm=ntlm).unbind()
        except _BindRefused:
            raise AuthenticationFailed() from None
        except LDAPException as exc:
            raise DirectoryUnreachable(f"cannot reach {self.config.host}: {_describe(exc)}") from None
        return user


class _BindRefused(Exception):
    pass


def _describe(exc: Exception) -> str:
    # ldap3 messages can embed the whole connection repr; the class name and first line suffice.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}"


# --- local accounts ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LocalAccount:
    login: str
    password_hash: str = field(repr=False)
    active: bool = True
    profile: dict = field(default_factory=dict)


_hasher = PasswordHasher()
# Verified against when the login is unknown, so a wrong login costs as long as a wrong password
# and response times do not reveal which logins exist.
_DUMMY_HASH = _hasher.hash("pageledger-no-such-user")


MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


class LocalDirectory:
    """Accounts PageLedger keeps itself; `lookup` reads one from wherever they are stored."""

    source = LOCAL_SOURCE

    def __init__(self, lookup: Callable[[str], LocalAccount | None],
                 listing: Callable[[], Iterator[LocalAccount]] | None = None) -> None:
        self._lookup = lookup
        self._listing = listing

    def test_connection(self) -> str:
        return "local accounts need no connection"

    def users(self) -> Iterator[DirectoryUser]:
        for account in (self._listing() if self._listing else ()):
            if account.active:
                yield DirectoryUser(login=account.login, **{k: v for k, v in account.profile.items()
                                                            if k in ("full_name", "email", "department")})

    def authenticate(self, login: str, password: str) -> DirectoryUser:
        """The account's user if `password` is theirs, Active or not, as a directory vouches
        for a password and nothing more: whether an Inactive user may log in is PageLedger's
        decision (commands.logins), the same for every source. Only someone who knows the
        password learns that the account is Inactive."""
        account = self._lookup(login.strip().lower()) if login.strip() else None
        try:
            _hasher.verify(account.password_hash if account else _DUMMY_HASH, password or "\0")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise AuthenticationFailed() from None
        if account is None:
            raise AuthenticationFailed()
        return DirectoryUser(login=account.login, **{k: v for k, v in account.profile.items()
                                                     if k in ("full_name", "email", "department")})
