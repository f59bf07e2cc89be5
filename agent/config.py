"""The agent's typed configuration: ``package.ini`` [Properties], ``NAME=value`` overrides, state dir.

``pageledger-agent install`` merges a ``package.ini`` (as the product modelled on ships it)
with upper-case ``NAME=value`` arguments (the command line wins) and writes the result to
``<state dir>/agent.ini`` (mode 0600: it holds the agent token). The backend reads only that
file. No other agent module reads configuration files or environment variables.
"""
from __future__ import annotations

import os
from collections import namedtuple

STATE_DIR = "/var/lib/pageledger-agent"
SERVER_BIN = "/usr/lib/cups"  # CUPS ServerBin: its backend/ holds the wrapper
INSTALL_DIR = "/opt/pageledger-agent"


def __getattr__(name: str):
    """``DEFAULT_STATE_DIR`` and ``DEFAULT_SERVER_BIN`` as Paths, made when first asked for:
    the backend uses the strings and does not import pathlib (PEP 562)."""
    if name in ("DEFAULT_STATE_DIR", "DEFAULT_SERVER_BIN"):
        from pathlib import Path

        return Path(STATE_DIR if name == "DEFAULT_STATE_DIR" else SERVER_BIN)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
CONFIG_FILE = "agent.ini"
SECTION = "Properties"
# Environment variable that points the backend and CLI at another state dir (tests, packaging).
STATE_DIR_ENV = "PAGELEDGER_AGENT_STATE_DIR"

# Property name (as written in package.ini) -> AgentConfig field.
PROPERTIES = {
    "ServicesUrl": "services_url",
    "AgentToken": "agent_token",
    "InstallDir": "install_dir",
    "SuppressReboots": "suppress_reboots",
    "SuppressAddRemove": "suppress_add_remove",
    "SuppressShortcuts": "suppress_shortcuts",
    "IgnoreDisconnected": "ignore_disconnected",
    "ServerTimeout": "server_timeout",
    "ClientHost": "client_host",
    "BatchSize": "batch_size",
    "InterpreterTimeout": "interpreter_timeout",
    "PrinterPollSeconds": "printer_poll_seconds",
}
_BY_UPPER = {name.upper(): name for name in PROPERTIES}


class ConfigError(ValueError):
    """A property is unknown or malformed, or a required one is missing."""


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be 1 or 0, not {value!r}")


# Field -> (how its property's value is parsed, its default). ignore_disconnected 1: print
# while the server cannot be reached and post the job later; 0: refuse until the agent has
# reached the server once (then the server's offline policy applies). client_host None: this
# host's name. interpreter_timeout: seconds Ghostscript may take on one job's document
# (PostScript, PDFs the parsers cannot settle) before its count is given up as unknown (the
# job still prints). (A namedtuple, not typing.NamedTuple: importing typing costs every
# backend process milliseconds.)
_FIELDS = {
    "state_dir": ("Path", None),  # None: STATE_DIR
    "services_url": ("str", ""),
    "agent_token": ("str", ""),
    "install_dir": ("Path", None),  # None: INSTALL_DIR
    "suppress_reboots": ("bool", True),
    "suppress_add_remove": ("bool", False),
    "suppress_shortcuts": ("bool", False),
    "ignore_disconnected": ("bool", True),
    "server_timeout": ("float", 3.0),
    "client_host": ("str", None),
    "batch_size": ("int", 500),
    "interpreter_timeout": ("float", 20.0),
    "printer_poll_seconds": ("float", 30.0),  # the release service asks CUPS for its printers' states
}
_Settings = namedtuple("_Settings", list(_FIELDS), defaults=[default for _, default in _FIELDS.values()])
_CLIENT_HOST = _Settings._fields.index("client_host")
_PATH_DEFAULTS = {"state_dir": STATE_DIR, "install_dir": INSTALL_DIR}
# Field -> its type's name ("bool", "Path"...): how a property's value is parsed.
_FIELD_TYPES = {name: kind for name, (kind, _) in _FIELDS.items()}


class AgentConfig(_Settings):
    """The agent's settings, as install wrote them to ``<state dir>/agent.ini``.

    An immutable record checked when it is made (a namedtuple, not a dataclass: importing
    dataclasses costs every backend process ~9 ms); ``replace`` makes a checked copy.

    Path fields (``state_dir``, ``install_dir``) are of the kind ``state_dir`` is given as: a
    ``pathlib.Path`` (install, the CLI, tests; the default) or a ``str`` (the backend, which does
    not import pathlib).
    """

    __slots__ = ()

    def __new__(cls, *args, **kwargs) -> "AgentConfig":
        self = super().__new__(cls, *args, **kwargs)
        if self.state_dir is None or self.install_dir is None:
            path = str if isinstance(self.state_dir, str) else _pathlib_path()
            values = self._asdict()
            for name, default in _PATH_DEFAULTS.items():
                values[name] = path(values[name] if values[name] is not None else default)
            self = tuple.__new__(cls, tuple(values.values()))
        if self.client_host is None:
            self = tuple.__new__(cls, (*self[:_CLIENT_HOST], os.uname().nodename, *self[_CLIENT_HOST + 1:]))
        if self.services_url and not self.services_url.startswith(("http://", "https://")):
            raise ConfigError(f"ServicesUrl must start with http:// or https://, not {self.services_url!r}")
        if self.server_timeout <= 0:
            raise ConfigError("ServerTimeout must be a positive number of seconds")
        if self.batch_size < 1:
            raise ConfigError("BatchSize must be at least 1")
        if not 0 < self.interpreter_timeout <= 3600:
            raise ConfigError("InterpreterTimeout must be a number of seconds between 0 and 3600")
        if not 1 <= self.printer_poll_seconds <= 3600:
            raise ConfigError("PrinterPollSeconds must be a number of seconds between 1 and 3600")
        return self

    def __repr__(self) -> str:  # never shows the token
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self) if name != "agent_token")
        return f"AgentConfig({shown})"

    def replace(self, **changes) -> "AgentConfig":
        """A copy with ``changes``, checked like a new one."""
        return AgentConfig(**{**self._asdict(), **changes})

    @property
    def config_path(self):
        """``<state dir>/agent.ini``, of the state dir's kind (Path or str)."""
        if isinstance(self.state_dir, str):
            return os.path.join(self.state_dir, CONFIG_FILE)
        return self.state_dir / CONFIG_FILE

    def with_properties(self, properties: dict[str, str]) -> "AgentConfig":
        """A copy with the given ``package.ini``-named properties applied."""
        changes: dict[str, object] = {}
        types = _FIELD_TYPES
        for name, value in properties.items():
            attr = PROPERTIES[name]
            kind = types[attr]
            if kind == "bool":
                changes[attr] = _parse_bool(name, value)
            elif kind == "float":
                try:
                    changes[attr] = float(value)
                except ValueError:
                    raise ConfigError(f"{name} must be a number, not {value!r}") from None
            elif kind == "int":
                try:
                    changes[attr] = int(value)
                except ValueError:
                    raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
            elif kind == "Path":
                changes[attr] = value if isinstance(self.state_dir, str) else _pathlib_path()(value)
            else:
                changes[attr] = value.strip()
        if "services_url" in changes:
            changes["services_url"] = str(changes["services_url"]).rstrip("/")
        return self.replace(**changes)

    def to_properties(self) -> dict[str, str]:
        out = {}
        for name, attr in PROPERTIES.items():
            value = getattr(self, attr)
            out[name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out

    def save(self) -> None:
        """Write agent.ini, readable by its owner only (it holds the agent token)."""
        os.makedirs(self.state_dir, exist_ok=True)
        import configparser  # only where a file is read or written: not for `count`

        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str
        parser[SECTION] = self.to_properties()
        tmp = os.path.splitext(os.fspath(self.config_path))[0] + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            parser.write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.config_path)


def _simple_ini_properties(text: str) -> dict[str, str] | None:
    """The [Properties] of an ini file made only of ``name = value`` lines, comments and blank
    lines in that one section (as ``save`` writes it), read without ``configparser``, whose
    import costs every backend process milliseconds; None for anything else (continuation
    lines, other sections...), which configparser then reads."""
    properties: dict[str, str] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if raw[0] in " \t":
            return None
        if line.startswith("["):
            if section is not None or line != f"[{SECTION}]":
                return None
            section = SECTION
            continue
        if section is None or "=" not in line:
            return None
        name, _, value = line.partition("=")
        name = name.strip()
        if ":" in name or not name or name.upper() in {n.upper() for n in properties}:
            return None
        properties[name] = value.strip()
    return properties if section is not None else None


def read_ini_properties(path) -> dict[str, str]:
    """The [Properties] of an ini file, with names spelt as documented (matching ignores case)."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    items = _simple_ini_properties(text)
    if items is None:
        import configparser

        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=str(path))
        except configparser.Error as err:
            raise ConfigError(f"{path}: {err}") from None
        if not parser.has_section(SECTION):
            raise ConfigError(f"{path}: no [{SECTION}] section")
        items = dict(parser.items(SECTION))
    properties = {}
    for name, value in items.items():
        canonical = _BY_UPPER.get(name.upper())
        if canonical is None:
            raise ConfigError(f"{path}: unknown property {name!r} (known: {', '.join(PROPERTIES)})")
        properties[canonical] = value
    return properties


def parse_name_value_arguments(arguments: list[str]) -> dict[str, str]:
    """``SERVICESURL=http://...`` style command-line properties."""
    properties = {}
    for argument in arguments:
        name, sep, value = argument.partition("=")
        canonical = _BY_UPPER.get(name.upper()) if sep else None
        if canonical is None:
            raise ConfigError(f"unknown argument {argument.split('=')[0]!r}: expected NAME=value with NAME one of "
                              f"{', '.join(n.upper() for n in PROPERTIES)}")
        properties[canonical] = value
    return properties


def state_dir_from_environment(default=STATE_DIR):
    """The state dir (a Path) named by ``$PAGELEDGER_AGENT_STATE_DIR``, else ``default``."""
    return _pathlib_path()(os.environ.get(STATE_DIR_ENV) or default)


def _pathlib_path():
    from pathlib import Path

    return Path


def load_config(state_dir) -> AgentConfig:
    """The configuration ``install`` wrote into ``state_dir`` (its paths of the same kind: Path
    or str)."""
    base = AgentConfig(state_dir=state_dir)
    path = base.config_path
    if not os.path.exists(path):
        raise ConfigError(f"{path} does not exist: run 'pageledger-agent install' first")
    return base.with_properties(read_ini_properties(path))
