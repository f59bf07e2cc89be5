"""What the queue's device can print: colour, both sides. Asked of CUPS once per queue, cached.

cupsd hands every backend the queue's PPD (``$PPD``), the description CUPS built of the device
(for a driverless queue, from the printer's own IPP attributes: ``color-supported``,
``sides-supported``). Its ``*ColorDevice`` says whether the device prints colour, a ``*Duplex``
option with a two-sided choice whether it prints both sides. A mono device's jobs have no
colour page whatever their options say, a simplex device's jobs are not duplex. The answer is
kept in ``<state>/abilities.json`` per queue with the PPD's size and modification time, so
that the PPD is read again only when CUPS rewrote it (``lpadmin``).

A queue without a PPD (a raw queue) has no description from CUPS: its device is asked itself
(IPP Get-Printer-Attributes, ``agent.ipp_device``) when its URI is ipp/ipps, once, the answer
kept for ``DEVICE_MAX_AGE`` (a device that did not answer is asked again after
``DEVICE_RETRY_AFTER``). Where the device cannot be asked (socket://, lpd://, usb://, no
answer) its colour is not known (``colour`` None): the job's colour pages are then sent as
uncertain, never assumed to print in colour nor in grey; such a device is taken to print both
sides as the job asks.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections import namedtuple

from agent.lazy_pattern import LazyPattern

CACHE_FILE = "abilities.json"
MAX_PPD_BYTES = 4 << 20
_COLOUR_DEVICE = LazyPattern(rb"^\*ColorDevice:\s*(\w+)", re.M)
_DUPLEX_CHOICE = LazyPattern(rb"^\*Duplex\s+(DuplexNoTumble|DuplexTumble)\b", re.M)


DEVICE_MAX_AGE = 86400.0
DEVICE_RETRY_AFTER = 600.0
DEVICE_TIMEOUT = 2.0


class Abilities(namedtuple("Abilities", "colour duplex source", defaults=(True, True, "no PPD: assumed able"))):
    """Whether the device prints colour (None: not known) and both sides, and where that was learnt."""

    __slots__ = ()


def read_ppd(path: str) -> Abilities:
    """The abilities a PPD states (colour unless it says ``*ColorDevice: False``)."""
    with open(path, "rb") as handle:
        text = handle.read(MAX_PPD_BYTES)
    colour = _COLOUR_DEVICE.search(text)
    return Abilities(colour=not (colour and colour.group(1).lower() == b"false"),
                     duplex=_DUPLEX_CHOICE.search(text) is not None, source=f"PPD {path}")


def _load_cache(cache_path: str) -> dict:
    try:
        with open(cache_path, encoding="utf-8") as handle:
            cache = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _save_cache(cache_path: str, cache: dict) -> None:
    try:
        tmp = os.path.join(os.path.dirname(cache_path), f".{CACHE_FILE}.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(cache))
        os.replace(tmp, cache_path)
    except OSError:
        pass  # a cache that cannot be written costs a PPD read (or a question) next time, nothing more


def abilities(printer: str, ppd: str | None, state_dir, device_uri: str | None = None,
              timeout: float = DEVICE_TIMEOUT) -> Abilities:
    """The queue's abilities, from the cache when its PPD (or, without one, its device URI) has
    not changed since."""
    if not ppd:
        return _device_abilities(printer, device_uri, state_dir, timeout)
    try:
        stat = os.stat(ppd)
    except FileNotFoundError:
        # cupsd names <ServerRoot>/ppd/<queue>.ppd for every queue; a raw queue has none.
        return _device_abilities(printer, device_uri, state_dir, timeout)
    except OSError:
        return Abilities(source=f"PPD {ppd} not readable: assumed able")
    stamp = [stat.st_size, stat.st_mtime_ns, ppd]
    cache_path = os.path.join(os.fspath(state_dir), CACHE_FILE)
    cache = _load_cache(cache_path)
    entry = cache.get(printer)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return Abilities(bool(entry.get("colour", True)), bool(entry.get("duplex", True)), f"PPD {ppd} (cached)")
    try:
        found = read_ppd(ppd)
    except OSError:
        return Abilities(source=f"PPD {ppd} not readable: assumed able")
    cache[printer] = {"stamp": stamp, "colour": found.colour, "duplex": found.duplex}
    _save_cache(cache_path, cache)
    return found


def _device_abilities(printer: str, device_uri: str | None, state_dir, timeout: float) -> Abilities:
    """A raw queue's device, asked over IPP (cached), or not known."""
    from agent import ipp_device

    if not device_uri:
        return Abilities(colour=None, source="no PPD and no device URI: colour not known")
    scheme = device_uri.split(":", 1)[0].lower()
    if scheme not in ("ipp", "ipps", "http", "https"):
        return Abilities(colour=None, source=f"no PPD, a {scheme}: device cannot be asked: colour not known")
    stamp = ["device", device_uri]
    cache_path = os.path.join(os.fspath(state_dir), CACHE_FILE)
    cache = _load_cache(cache_path)
    entry = cache.get(printer)
    now = time.time()
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("asked_at"), (int, float)):
        answered = entry.get("answered", False)
        if now - entry["asked_at"] < (DEVICE_MAX_AGE if answered else DEVICE_RETRY_AFTER):
            colour = entry.get("colour")
            return Abilities(colour if isinstance(colour, bool) else None, entry.get("duplex") is not False,
                             f"device {scheme}:// {'answered' if answered else 'did not answer'} (cached)")
    try:
        colour, duplex = ipp_device.ask(device_uri, timeout)
    except (OSError, ValueError) as err:
        cache[printer] = {"stamp": stamp, "asked_at": now, "answered": False}
        _save_cache(cache_path, cache)
        return Abilities(colour=None, source=f"device {scheme}:// did not answer ({err}): colour not known")
    cache[printer] = {"stamp": stamp, "asked_at": now, "answered": True, "colour": colour, "duplex": duplex}
    _save_cache(cache_path, cache)
    return Abilities(colour, duplex is not False, f"device {scheme}:// asked (IPP Get-Printer-Attributes)")
