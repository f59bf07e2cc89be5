"""A CUPS job as a backend receives it: argv (job-id user title copies options [file]) and options.

The options string is parsed as ``cupsParseOptions`` does: ``name=value`` pairs separated
by spaces, values optionally quoted or braced (collections), backslash escapes, and bare
``name``/``noname`` meaning true/false.
"""
from __future__ import annotations

import time
from collections import namedtuple

from agent.pagecount.paper import paper_from_media_name


class BadJobArguments(ValueError):
    """argv does not follow the CUPS backend contract."""


def parse_cups_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        while i < n and not text[i].isspace() and text[i] != "=":
            i += 1
        name = text[start:i]
        if i < n and text[i] == "=":
            i += 1
            value = []
            depth = 0
            while i < n and (depth > 0 or not text[i].isspace()):
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                    continue
                if ch in "'\"" and depth == 0:
                    end = i + 1
                    while end < n and text[end] != ch:
                        if text[end] == "\\" and end + 1 < n:
                            value.append(text[end + 1])
                            end += 2
                            continue
                        value.append(text[end])
                        end += 1
                    i = end + 1
                    continue
                if ch == "{":
                    depth += 1
                elif ch == "}" and depth:
                    depth -= 1
                value.append(ch)
                i += 1
            options[name.lower()] = "".join(value)
        elif name:
            if name.lower().startswith("no") and len(name) > 2:
                options[name[2:].lower()] = "false"
            else:
                options[name.lower()] = "true"
    return options


def _parse_int(name: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadJobArguments(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise BadJobArguments(f"{name} must be at least {minimum}, not {number}")
    return number


class CupsJob(namedtuple("CupsJob", "job_id user title copies options file options_text", defaults=("",))):
    """One job handed to the backend by cupsd: ``job_id`` and ``copies`` ints, ``options`` the
    parsed options, ``file`` the spool file of a raw queue (None: the data is on stdin),
    ``options_text`` argv[5] as cupsd gave it."""

    __slots__ = ()

    @classmethod
    def from_argv(cls, argv: list[str]) -> "CupsJob":
        """From ``argv[1:]``: job-id user title copies options [file]."""
        if len(argv) not in (5, 6):
            raise BadJobArguments(f"expected 5 or 6 arguments (job-id user title copies options [file]), got {len(argv)}")
        job_id = _parse_int("job-id", argv[0], 1)
        copies = _parse_int("copies", argv[3], 1)
        return cls(job_id, argv[1], argv[2], copies, parse_cups_options(argv[4]),
                   argv[5] if len(argv) == 6 else None, argv[4])

    @property
    def duplex(self) -> bool | None:
        """True/False when the job says one- or two-sided; None when it does not say."""
        sides = self.options.get("sides")
        if sides:
            return sides.startswith("two-sided")
        ppd_duplex = self.options.get("duplex")
        if ppd_duplex:
            return ppd_duplex.lower() in ("duplexnotumble", "duplextumble", "true")
        return None

    @property
    def number_up(self) -> int:
        value = self.options.get("number-up", "1")
        return _parse_int("number-up", value, 1)

    @property
    def page_ranges(self) -> str:
        return self.options.get("page-ranges", "")

    @property
    def monochrome(self) -> bool:
        mode = self.options.get("print-color-mode", "").lower()
        model = self.options.get("colormodel", "").lower()
        return mode in ("monochrome", "bi-level", "process-monochrome") or model in ("gray", "grey", "black", "kgray")

    @property
    def paper(self) -> str:
        for name in ("media", "pagesize", "media-size-name"):
            value = self.options.get(name)
            if value:
                # media may list several keywords: "iso_a4_210x297mm,tray-1"
                for part in value.split(","):
                    paper = paper_from_media_name(part)
                    if paper != "unknown":
                        return paper
        return "unknown"

    @property
    def created_at(self) -> str | None:
        """When cupsd created the job (its ``time-at-creation`` option), if it says, as an
        ISO 8601 UTC time to the second (formatted with ``time``: no datetime import per job)."""
        value = self.options.get("time-at-creation", "")
        if value.isdigit() and 0 < int(value) < 253402300800:
            return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(int(value)))
        return None

    @property
    def job_uuid(self) -> str:
        return self.options.get("job-uuid", "")

    @property
    def release_code(self) -> str:
        return self.options.get("release-code", "")

    def job_key(self, hostname: str) -> str:
        """``<hostname>/<cups job id>/<job-uuid or title hash>``: stable across re-posts of this job."""
        # surrogateescape: a title that is not UTF-8 (argv decodes it to lone surrogates) hashes
        # as the bytes it was, instead of failing the job.
        raw = f"{self.user}\0{self.title}".encode("utf-8", "surrogateescape")
        suffix = self.job_uuid or "t" + _sha256_hex(raw)[:16]
        key = f"{hostname}/{self.job_id}/{suffix}"
        if len(key) > 255:
            key = f"{hostname[:100]}/{self.job_id}/h{_sha256_hex(key.encode())[:32]}"
        return key


def _sha256_hex(data: bytes) -> str:
    # Imported here: hashlib (OpenSSL) costs a backend process milliseconds, and a job with a
    # job-uuid (every job CUPS 2 submits) never needs it.
    from hashlib import sha256

    return sha256(data).hexdigest()
