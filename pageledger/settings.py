"""Typed configuration, read once from ``PAGELEDGER_*`` environment variables and an optional TOML file.

Precedence: explicit keyword arguments > environment > TOML file > defaults. No other module
reads ``os.environ`` for PageLedger settings.
"""
from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "PAGELEDGER_"


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    # Where the data lives. Relative paths are relative to the directory the server starts in.
    data_dir: Path = Path("var")
    # One URL picks the store: sqlite:///path.db (default, under data_dir) or postgresql://...
    database_url: str = ""
    # Redis for background work; empty means tasks run in-process.
    redis_url: str = ""
    host: str = "0.0.0.0"
    port: int = 0  # 0: `up` takes 80 when free and permitted, else 6320; `serve` 6320
    # HTTPS (the web console). 0: `up` takes 443 when free and permitted, else 6321, when the
    # HTTP port is chosen automatically too; with an explicit HTTP port, HTTPS runs only on an
    # explicit https_port (so two servers started side by side never fight over 6321); -1: off.
    https_port: int = 0
    # The admin's certificate (PEM, chain first) and key; empty: a self-signed pair made on
    # first start under data_dir (adapters.tls), its fingerprint printed.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Namespace of job ids: the same client job key posted to the same server is the same job.
    server_id: str = "pageledger"
    # Prices for printers that have no schedule of their own, in 1/10,000 of the currency unit.
    default_mono_page: int = 1000
    default_colour_page: int = 5000
    default_duplex_discount_pct: int = 0
    currency: str = "EUR"
    # What an agent does with a job while it cannot reach the server: "print" or "refuse".
    offline_policy: str = "print"
    # Replaced by the site setting of the same name (domain.site_settings.PRICING: an admin's,
    # saved from the console with who/old/new). Still accepted so that an existing
    # configuration loads; a value other than "colour" is warned about and not read.
    unknown_colour_charge: str = "colour"
    # How often (seconds) the in-process projection runner polls an idle log.
    projection_poll_seconds: float = 0.05
    log_level: str = "INFO"
    # The largest held job's data a secure queue takes (MiB); a larger upload is refused (413).
    max_spool_mib: int = 400
    # Identity and licensing. The issuer's public key: PEM or base64 text, or a path to a PEM
    # file; "" trusts the key shipped with PageLedger.
    licence_public_key: str = ""
    activation_url: str = ""  # online activation service (tools/activation_service)
    session_hours: int = 8  # lifetime of a web login
    # The daily notice naming users denied a licence seat (none sent without recipients).
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_sender: str = "pageledger@localhost"
    admin_emails: str = ""  # comma-separated
    # SMTP for the notices and the scheduled reports: STARTTLS and a login when set. The
    # password is never logged (SmtpSettings hides it from repr).
    smtp_starttls: int = 0  # 1: STARTTLS before sending
    smtp_username: str = ""
    smtp_password: str = ""
    # Scheduled reports: how often a worker looks for due schedules, and how a failed run is retried.
    schedule_tick_seconds: float = 60.0
    schedule_attempts: int = 3
    # Request bodies (api.limits): JSON bodies, an agent's batch of jobs (5,000 at most), how
    # deeply JSON may nest, and how long a body may take to arrive once its request is read.
    max_json_bytes: int = 1024 * 1024
    max_batch_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 32
    body_read_seconds: float = 10.0
    # Slow clients (pageledger.server.BufferingThreadWorker): a request's head and body, up to
    # request_buffer_bytes of it, are gathered by the worker's event loop, not by a thread; a
    # client that has not sent them within request_read_seconds is answered 408 and dropped.
    request_read_seconds: float = 10.0
    request_buffer_bytes: int = 1024 * 1024
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated IPs or CIDRs); "" = none:
    # the client is the TCP peer. Used for the login throttle and the login audit.
    trusted_proxies: str = ""
    # The setup wizard's "test connection" (and its final check) connects only to these ports,
    # and gives up on a silent host after setup_ldap_timeout seconds.
    setup_ldap_ports: str = "389,636,3268,3269"
    setup_ldap_timeout: float = 3.0
    # Secure release (docs/secure-release.md): `up` runs the release service next to this host's
    # cupsd when release_cups is set ("localhost" for the default cupsd, or host:port).
    release_cups: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pageledger.db').resolve()}"

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None,
             environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = config_file or environ.get(ENV_PREFIX + "CONFIG")
        if path:
            try:
                with open(path, "rb") as f:
                    values.update(tomllib.load(f).get("pageledger", {}))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"cannot read config file {path}: {exc}") from exc
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        for name in known:
            env_value = environ.get(ENV_PREFIX + name.upper())
            if env_value is not None:
                values[name] = env_value
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(known)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        converted: dict[str, Any] = {}
        for name, value in values.items():
            converted[name] = _convert(name, known[name].type, value)
        settings = replace(cls(), **converted)
        if settings.offline_policy not in ("print", "refuse"):
            raise SettingsError("offline_policy must be 'print' or 'refuse'")
        if settings.unknown_colour_charge not in ("colour", "mono"):
            raise SettingsError("unknown_colour_charge must be 'colour' or 'mono'")
        if settings.max_spool_mib < 1:
            raise SettingsError("max_spool_mib must be at least 1")
        settings.trusted_proxy_networks  # noqa: B018 - refuse a malformed list at start, not at a login
        settings.setup_ldap_port_list  # noqa: B018
        return settings

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        try:
            return tuple(ipaddress.ip_network(p.strip(), strict=False)
                         for p in self.trusted_proxies.split(",") if p.strip())
        except ValueError as exc:
            raise SettingsError(f"trusted_proxies ({ENV_PREFIX}TRUSTED_PROXIES): {exc}") from None

    @property
    def setup_ldap_port_list(self) -> tuple[int, ...]:
        try:
            ports = tuple(int(p) for p in self.setup_ldap_ports.split(",") if p.strip())
        except ValueError:
            ports = (0,)
        if not ports or not all(0 < p < 65536 for p in ports):
            raise SettingsError(f"setup_ldap_ports ({ENV_PREFIX}SETUP_LDAP_PORTS): {self.setup_ldap_ports!r} "
                                "is not a comma-separated list of TCP ports")
        return ports


def _convert(name: str, type_name: Any, value: Any) -> Any:
    type_name = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    try:
        if type_name == "int":
            return int(value)
        if type_name == "float":
            return float(value)
        if type_name == "Path":
            return Path(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name} ({ENV_PREFIX}{name.upper()}): {value!r} is not a valid {type_name}") from exc
