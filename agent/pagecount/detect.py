"""Telling a document's page description language from its first bytes (never its file name)."""
from __future__ import annotations

import re
from agent.lazy_pattern import LazyPattern

HEAD_BYTES = 64 * 1024
UEL = b"\x1b%-12345X"

_PJL_ENTER = LazyPattern(rb"@PJL\s+ENTER\s+LANGUAGE\s*=\s*([A-Za-z0-9]+)", re.IGNORECASE)
_PJL_LANGUAGES = {b"PCL": "pcl5", b"PCLXL": "pclxl", b"POSTSCRIPT": "postscript", b"PDF": "pdf"}


def read_head(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


def _skip_pjl(head: bytes) -> tuple[bytes, str | None]:
    """The bytes after a PJL job header, and the language its ENTER LANGUAGE names."""
    language = None
    rest = head
    while True:
        stripped = rest.lstrip(b"\r\n\t \x00")
        if stripped.startswith(UEL):
            rest = stripped[len(UEL):]
            continue
        if stripped[:4].upper() == b"@PJL":
            end = stripped.find(b"\n")
            line = stripped if end < 0 else stripped[: end + 1]
            match = _PJL_ENTER.match(line)
            if match:
                language = _PJL_LANGUAGES.get(match.group(1).upper())
            if end < 0:
                return b"", language
            rest = stripped[end + 1:]
            continue
        return rest, language


def _looks_like_text(data: bytes) -> bool:
    if not data or b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut at the end of the sample is still text.
        if err.start < len(data) - 4:
            text = data.decode("latin-1")
        else:
            text = data[: err.start].decode("utf-8")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t\f\b")
    return printable >= 0.95 * len(text)


# PWG raster (RaS2), and CUPS raster v2 (compressed) and v3 (uncompressed) in either byte order
# (Ghostscript's cups device writes 3SaR): one reader, agent.pagecount.pwg_raster.
RASTER_SYNCS = (b"RaS2", b"2SaR", b"RaS3", b"3SaR")


def detect_format(head: bytes) -> str:
    """One of pdf, postscript, pcl5, pclxl, pwg-raster, urf, text, unknown."""
    if head[:4] in RASTER_SYNCS:
        return "pwg-raster"
    if head.startswith(b"UNIRAST\x00"):
        return "urf"
    if head.startswith(b"%PDF-"):
        return "pdf"
    body, language = _skip_pjl(head)
    body_start = body.lstrip(b"\x04\r\n\t ")
    if body_start.startswith(b"%PDF-"):
        return "pdf"
    if body_start.startswith(b"%!") or body.startswith(b"\xc5\xd0\xd3\xc6"):
        return "postscript"
    if body_start[1:12] in (b" HP-PCL XL;",) or body_start.startswith((b") HP-PCL XL", b"( HP-PCL XL")):
        return "pclxl"
    if body_start.startswith(b"\x1b") and body_start[1:2] in (b"E", b"&", b"*", b"(", b")", b"%", b"9"):
        return "pcl5"
    if language is not None and body_start:
        return language
    # PDF allows bytes before its header within the first kilobyte.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if _looks_like_text(head[:8192]):
        return "text"
    return "unknown"
