"""Regular expressions compiled when first used, not when their module is imported.

A backend is a new process per job: compiling every pattern of the page counters at import
cost a job ~10 ms, most of them for formats or paths (colour, damaged files) the job never
takes (issue 19). A ``LazyPattern`` compiles on its first attribute access and then binds the
compiled pattern's methods to itself, so later calls cost what a compiled pattern's do.
"""
from __future__ import annotations

import re

_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "split", "sub", "subn", "scanner")


class LazyPattern:
    """``re.compile(pattern, flags)``, done on first use."""

    def __init__(self, pattern, flags: int = 0):
        self._source = (pattern, flags)

    def __getattr__(self, name: str):
        compiled = re.compile(*self._source)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        for attribute in ("pattern", "flags", "groups", "groupindex"):
            setattr(self, attribute, getattr(compiled, attribute))
        return getattr(compiled, name)
