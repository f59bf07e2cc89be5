"""Counting PCL XL (PCL 6) pages: the EndPage operator (0x44), found by walking the token stream.

PCL XL is binary: values, attribute ids, operators and embedded data blocks, each with a
tag that says its length. Walking tokens by their lengths (instead of searching for 0x44)
keeps bytes inside images and fonts from being taken for operators. ``EndPage`` may carry
a ``PageCopies`` attribute; ``BeginPage`` carries the media size and duplex mode, and
``SetColorSpace`` tells grey from colour pages.
"""
from __future__ import annotations

import struct

from agent.pagecount.facts import DocumentFacts, mapped
from agent.lazy_pattern import LazyPattern

_STREAM_HEADER = LazyPattern(rb"[)(] HP-PCL XL[^\n]*\n")
_WHITESPACE = {0x00, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20}
# Data type tag -> size in bytes of one value (single, xy and box types).
_SCALARS = {0xC0: 1, 0xC1: 2, 0xC2: 4, 0xC3: 2, 0xC4: 4, 0xC5: 4,
            0xD0: 2, 0xD1: 4, 0xD2: 8, 0xD3: 4, 0xD4: 8, 0xD5: 8,
            0xE0: 4, 0xE1: 8, 0xE2: 16, 0xE3: 8, 0xE4: 16, 0xE5: 16}
_ARRAYS = {0xC8: 1, 0xC9: 2, 0xCA: 4, 0xCB: 2, 0xCC: 4, 0xCD: 4}
BEGIN_PAGE, END_PAGE, SET_COLOR_SPACE = 0x43, 0x44, 0x6A
ATTR_COLOR_SPACE, ATTR_MEDIA_SIZE, ATTR_PAGE_COPIES, ATTR_DUPLEX_PAGE_MODE = 0x03, 0x25, 0x32, 0x35
GREY_SPACE = 1  # eGray; 2 eRGB, 5 eSRGB
_MEDIA_SIZES = {0: "Letter", 1: "Legal", 2: "A4", 3: "Executive", 4: "Tabloid", 5: "A3",
                6: "Envelope-10", 8: "Envelope-C5", 9: "Envelope-DL", 10: "JIS-B4",
                11: "JIS-B5", 16: "A5", 17: "A6"}
_MEDIA_NAMES = {"LETTER": "Letter", "LEGAL": "Legal", "A4": "A4", "A3": "A3", "A5": "A5",
                "EXEC": "Executive", "LEDGER": "Tabloid", "JB4": "JIS-B4", "JB5": "JIS-B5"}


class MalformedPclXl(ValueError):
    """A byte that is no PCL XL tag where a tag must be."""


def count(path: str) -> DocumentFacts:
    with mapped(path) as data:
        if data is None:  # empty file
            return DocumentFacts("pclxl", 0)
        return _count(data)


def _count(data) -> DocumentFacts:
    pages = colour_pages = 0
    paper = "unknown"
    data_copies: int | None = None
    data_duplex: bool | None = None
    end = len(data)
    pos = 0
    while True:
        header = _STREAM_HEADER.search(data, pos)
        if header is None:
            break
        little = data[header.start()] == ord(")")
        pos = header.end()
        page_colour = False
        value: object = None
        attrs: dict[int, object] = {}
        while pos < end:
            tag = data[pos]
            pos += 1
            if tag in _WHITESPACE:
                continue
            if tag in _SCALARS:
                size = _SCALARS[tag]
                if size in (1, 2, 4) and tag in (0xC0, 0xC1, 0xC2):
                    value = int.from_bytes(data[pos:pos + size], "little" if little else "big")
                else:
                    value = None
                pos += size
            elif tag in _ARRAYS:
                length_tag = data[pos]
                if length_tag == 0xC0:
                    length = data[pos + 1]
                    pos += 2
                elif length_tag == 0xC1:
                    length = struct.unpack_from("<H" if little else ">H", data, pos + 1)[0]
                    pos += 3
                else:
                    raise MalformedPclXl(f"bad array length tag 0x{length_tag:02x} at {pos}")
                value = bytes(data[pos:pos + length]) if tag == 0xC8 else None
                pos += length * _ARRAYS[tag]
            elif tag == 0xF8:
                attrs[data[pos]] = value
                pos += 1
            elif tag == 0xF9:
                attrs[struct.unpack_from("<H" if little else ">H", data, pos)[0]] = value
                pos += 2
            elif tag == 0xFA:
                (length,) = struct.unpack_from("<I" if little else ">I", data, pos)
                pos += 4 + length
            elif tag == 0xFB:
                pos += 1 + data[pos]
            elif tag == 0x1B:
                # Universal Exit Language: this stream is over; another may follow after PJL.
                break
            elif 0x40 <= tag <= 0xBF:
                if tag == BEGIN_PAGE:
                    page_colour = False
                    if pages == 0:
                        paper = _media_name(attrs.get(ATTR_MEDIA_SIZE))
                    if ATTR_DUPLEX_PAGE_MODE in attrs:
                        data_duplex = True
                    elif data_duplex is None:
                        data_duplex = False
                elif tag == SET_COLOR_SPACE:
                    space = attrs.get(ATTR_COLOR_SPACE)
                    if isinstance(space, int) and space != GREY_SPACE:
                        page_colour = True
                elif tag == END_PAGE:
                    pages += 1
                    colour_pages += page_colour
                    copies = attrs.get(ATTR_PAGE_COPIES)
                    if isinstance(copies, int) and copies > 1:
                        data_copies = copies
                attrs = {}
                value = None
            else:
                raise MalformedPclXl(f"unknown PCL XL tag 0x{tag:02x} at {pos - 1}")
    return DocumentFacts("pclxl", pages, colour_pages, True, paper, data_copies, data_duplex)


def _media_name(value: object) -> str:
    if isinstance(value, int):
        return _MEDIA_SIZES.get(value, "unknown")
    if isinstance(value, bytes):
        return _MEDIA_NAMES.get(value.decode("ascii", "replace").upper().rstrip("\x00"), "unknown")
    return "unknown"
