"""What the queue's device can print: colour, both sides. Asked of CUPS once per queue, cached.

cupsd hands every backend the queue's PPD (``$PPD``), the description CUPS built of the device
(for a driverless queue, from the printer's own IPP attributes: ``color-supported``,
``sides-supported``). Its ``*ColorDevice`` says whether the device prints colour, a ``*Duplex``
option with a two-sided choice whether it prints both sides. A mono device's jobs have no
colour page whatever their options say, a simplex device's jobs are not duplex. The answer is
kept in ``<state>/abilities.json`` per queue with the PPD's size and modification time, so
that the PPD is read again only when CUPS rewrote it (``lpadmin``). A queue without a PPD (a
raw queue) is taken to print both: its data says what it asks, the printer was chosen for it.
"""
from __future__ import annotations

import json
import os
import re
from collections import namedtuple
from pathlib import Path

from agent.lazy_pattern import LazyPattern

CACHE_FILE = "abilities.json"
MAX_PPD_BYTES = 4 << 20
_COLOUR_DEVICE = LazyPattern(rb"^\*ColorDevice:\s*(\w+)", re.M)
_DUPLEX_CHOICE = LazyPattern(rb"^\*Duplex\s+(DuplexNoTumble|DuplexTumble)\b", re.M)


class Abilities(namedtuple("Abilities", "colour duplex source", defaults=(True, True, "no PPD: assumed able"))):
    """Whether the device prints colour and both sides, and where that was learnt."""

    __slots__ = ()


def read_ppd(path: str) -> Abilities:
    """The abilities a PPD states (colour unless it says ``*ColorDevice: False``)."""
    with open(path, "rb") as handle:
        text = handle.read(MAX_PPD_BYTES)
    colour = _COLOUR_DEVICE.search(text)
    return Abilities(colour=not (colour and colour.group(1).lower() == b"false"),
                     duplex=_DUPLEX_CHOICE.search(text) is not None, source=f"PPD {path}")


def abilities(printer: str, ppd: str | None, state_dir: Path) -> Abilities:
    """The queue's abilities, from the cache when its PPD has not changed since."""
    if not ppd:
        return Abilities()
    try:
        stat = os.stat(ppd)
    except OSError:
        return Abilities(source=f"PPD {ppd} not readable: assumed able")
    stamp = [stat.st_size, stat.st_mtime_ns, ppd]
    cache_path = state_dir / CACHE_FILE
    try:
        cache = json.loads(cache_path.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(printer)
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return Abilities(bool(entry.get("colour", True)), bool(entry.get("duplex", True)), f"PPD {ppd} (cached)")
    try:
        found = read_ppd(ppd)
    except OSError:
        return Abilities(source=f"PPD {ppd} not readable: assumed able")
    cache[printer] = {"stamp": stamp, "colour": found.colour, "duplex": found.duplex}
    try:
        tmp = cache_path.with_name(f".{CACHE_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_path)
    except OSError:
        pass  # a cache that cannot be written costs a PPD read next time, nothing more
    return found
