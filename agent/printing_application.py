"""The application a job was printed from, as far as the job itself tells it.

CUPS gives a backend no field that names the printing application for every client, so the
agent takes the first of these that the job carries (and "" — shown as "unknown" — when none):

1. the job option ``com.apple.print.JobInfo.PMApplicationName``: macOS clients send the name of
   the application whose print dialog made the job, and cupsd passes it to the backend in
   argv[5] with the other job attributes;
2. what the document says made it:
   - PDF: the document information dictionary's ``/Creator`` (the application that made the
     content: "Writer", "Mozilla Firefox"), else its ``/Producer`` (the library that wrote the
     PDF: "GPL Ghostscript", "cairo", "Skia/PDF"), else the XMP metadata's ``xmp:CreatorTool``;
     an encrypted PDF's strings are encrypted and are not read;
   - PostScript: the DSC header comment ``%%Creator:``;
   - other languages (PCL, PWG raster, URF, text) carry no such field: "".

Names are made comparable: controls removed, white space collapsed, a trailing version cut off
("LibreOffice 7.5.3.2" -> "LibreOffice", "GPL Ghostscript 10.00.0" -> "GPL Ghostscript",
"cairo 1.16.0 (https://cairographics.org)" -> "cairo"), at most ``MAX_LENGTH`` characters.

What the backend reads is the data cupsd hands it: on a raw queue the client's own bytes; on a
filtered queue the filters' output, which keeps a PDF's information dictionary through
pdftopdf but names the converter (e.g. Ghostscript) when the filters turned it into PostScript.
The job's title is never used: it is the user's document name, not the application's.
"""
from __future__ import annotations

import mmap

from agent.lazy_pattern import LazyPattern

MAX_LENGTH = 64
APPLE_APPLICATION_OPTION = "com.apple.print.jobinfo.pmapplicationname"  # options are lower-cased keys
HEADER_BYTES = 64 * 1024  # where a PostScript file's DSC header comments are
XMP_BYTES = 256 * 1024  # the most of an XMP packet read

_CONTROL = LazyPattern("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufeff]")
_SPACES = LazyPattern(r"\s+")
# A trailing version: a space, an optional "v" or "version", a digit, and whatever follows.
_VERSION = LazyPattern(r"(?i)\s+(?:v(?:ersion)?\s*)?\d[\w.\-]*(?:\s.*)?$")
_DSC_CREATOR = LazyPattern(rb"(?m)^%%Creator:[ \t]*([^\r\n]*)")
_DSC_END = LazyPattern(rb"(?m)^%%EndComments")
_XMP_CREATOR_TOOL = LazyPattern(rb"<xmp:CreatorTool>([^<]{1,512})</xmp:CreatorTool>|xmp:CreatorTool=\"([^\"]{1,512})\"")


def printing_application(options: dict[str, str], path: str | None, pdl: str) -> str:
    """The application of a job with these (parsed, lower-cased) CUPS options, whose data is at
    ``path`` in page-description language ``pdl`` (agent.pagecount's format names); "" unknown."""
    named = clean_name(options.get(APPLE_APPLICATION_OPTION, ""))
    if named:
        return named
    if path is None:
        return ""
    try:
        if pdl == "pdf":
            return pdf_application(path)
        if pdl == "postscript":
            return postscript_application(path)
    except (OSError, ValueError, RecursionError, IndexError, KeyError, TypeError):
        return ""
    return ""


def clean_name(name: str) -> str:
    """An application name made comparable (see the module's docstring); "" when nothing is left."""
    name = _SPACES.sub(" ", _CONTROL.sub("", name)).strip()
    if name.startswith("(") and name.endswith(")"):  # a DSC <textline> may be written as a string
        name = name[1:-1].strip()
    unversioned = _VERSION.sub("", name).strip()
    return (unversioned or name)[:MAX_LENGTH].strip()


def postscript_application(path: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    end = _DSC_END.search(head)
    match = _DSC_CREATOR.search(head, 0, end.start() if end else len(head))
    return clean_name(match.group(1).decode("utf-8", "replace")) if match else ""


def pdf_application(path: str) -> str:
    from agent.pagecount.pdf_structure import HexString, PdfStructure, Stream, Unsupported, decode

    with open(path, "rb") as handle:
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return ""
        with data:
            try:
                pdf = PdfStructure(data)
                if pdf.trailer.get("Encrypt") is not None:
                    return ""
                info = pdf.resolve(pdf.trailer.get("Info"))
                if isinstance(info, dict):
                    for key in ("Creator", "Producer"):
                        value = pdf.resolve(info.get(key))
                        name = (clean_name(pdf_text(value, hexadecimal=isinstance(value, HexString)))
                                if isinstance(value, bytes) else "")
                        if name:
                            return name
                root = pdf.resolve(pdf.trailer.get("Root"))
                metadata = pdf.resolve(root.get("Metadata")) if isinstance(root, dict) else None
                if isinstance(metadata, Stream):
                    raw = metadata.raw if metadata.header.get("Filter") is None else decode(metadata, pdf)
                    match = _XMP_CREATOR_TOOL.search(raw[:XMP_BYTES])
                    if match:
                        return clean_name(_xml_text((match.group(1) or match.group(2)).decode("utf-8", "replace")))
            except Unsupported:
                return ""
    return ""


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f",
            ord("("): b"(", ord(")"): b")", ord("\\"): b"\\"}
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def pdf_text(raw: bytes, *, hexadecimal: bool = False) -> str:
    """A PDF string as pdf_structure returns it (a literal string's body with its escapes, or
    with `hexadecimal` a hex string's digits) as text: UTF-16BE or UTF-8 with their byte-order
    marks, else PDFDocEncoding (read as Latin-1, which it equals for letters and digits)."""
    if hexadecimal:
        digits = bytes(c for c in raw if c in _HEX_DIGITS)
        data = bytes.fromhex(digits.decode() + ("0" if len(digits) % 2 else ""))
    else:
        data = _unescape(raw)
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", "replace")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    return data.decode("latin-1")


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != 0x5C or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in _ESCAPES:
            out += _ESCAPES[nxt]
            i += 2
        elif 0x30 <= nxt <= 0x37:  # \ddd, one to three octal digits
            j = i + 1
            while j < n and j < i + 4 and 0x30 <= raw[j] <= 0x37:
                j += 1
            out.append(int(raw[i + 1:j], 8) & 0xFF)
            i = j
        elif nxt in b"\r\n":  # a line continuation
            i += 3 if raw[i + 1:i + 3] == b"\r\n" else 2
        else:
            out.append(nxt)
            i += 2
    return bytes(out)


def _xml_text(text: str) -> str:
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return text
