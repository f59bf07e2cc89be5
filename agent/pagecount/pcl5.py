"""Counting PCL 5 pages by following its escape sequences.

A page is ejected by a form feed (always: a printer feeds a blank sheet for a bare FF, which
is the classic "extra blank page"), and by a reset (``ESC E``), a Universal Exit Language
or the end of the data only when something was put on the page since the last eject —
drivers send ``ESC E`` at both ends of every job. Binary payloads (raster rows ``ESC *b#W``,
planes ``ESC *b#V``, downloads ``ESC (s#W`` and every other ``...#W``, transparent data
``ESC &p#X``) are skipped by their length, so a 0x0C byte inside an image is not a page.
HP-GL/2 sections (``ESC %#B`` .. ``ESC %#A``) mark the page and may eject it with ``PG``.

Colour: PCL 5e is monochrome; colour needs PCL 5c commands (``ESC *r#U`` simple colour other
than 1, ``ESC *v#W`` configure image data). A stream without them (and without HP-GL/2,
whose pens may be coloured) prints only black: its colour is known to be 0. With them, which
pages use colour is not told: 0 with ``colour_known`` False.
"""
from __future__ import annotations


from agent.pagecount.facts import DocumentFacts, mapped
from agent.lazy_pattern import LazyPattern

ESC, FF = 0x1B, 0x0C
_NEXT_CONTROL = LazyPattern(rb"[\x1b\x0c]")
_MARK = LazyPattern(rb"[\x21-\x7e\x80-\xff]")
_VALUE = LazyPattern(rb"[+-]?[0-9]*(?:\.[0-9]*)?")
_HPGL_PG = LazyPattern(rb"(?:^|[;\s])PG[\s\d,]*(?:;|$)")
# ESC &l#A page size codes.
_PAGE_SIZES = {1: "Executive", 2: "Letter", 3: "Legal", 6: "Tabloid", 25: "A5", 26: "A4",
               27: "A3", 45: "JIS-B5", 46: "JIS-B4", 81: "Envelope-10", 90: "Envelope-DL",
               91: "Envelope-C5", 100: "B5"}


class _Page:
    """The page being composed: whether anything was put on it, and how many were ejected."""

    def __init__(self) -> None:
        self.pages = 0
        self.marked = False

    def mark(self) -> None:
        self.marked = True

    def eject(self, force: bool) -> None:
        if self.marked or force:
            self.pages += 1
        self.marked = False


def count(path: str) -> DocumentFacts:
    with mapped(path) as data:
        if data is None:  # empty file
            return DocumentFacts("pcl5", 0)
        return _count(data)


def _count(data) -> DocumentFacts:
    page = _Page()
    paper = "unknown"
    data_copies: int | None = None
    data_duplex: bool | None = None
    end = len(data)
    pos = 0
    pjl = False
    colour_possible = False
    while pos < end:
        if pjl:
            # After a Universal Exit Language: PJL command lines until the next language starts.
            while pos < end and data[pos] in b"\r\n\t ":
                pos += 1
            if data[pos:pos + 4].upper() == b"@PJL":
                newline = data.find(b"\n", pos)
                pos = end if newline < 0 else newline + 1
                continue
            pjl = False
        match = _NEXT_CONTROL.search(data, pos)
        nxt = match.start() if match else end
        if nxt > pos and _MARK.search(data, pos, nxt):
            page.mark()
        if nxt >= end:
            break
        if data[nxt] == FF:
            page.eject(force=True)
            pos = nxt + 1
            continue
        pos = nxt + 1
        if pos >= end:
            break
        first = data[pos]
        if not 0x21 <= first <= 0x2F:
            if first == ord("E"):
                page.eject(force=False)
            pos += 1
            continue
        pos += 1
        group = 0
        if pos < end and 0x60 <= data[pos] <= 0x7E:
            group = data[pos]
            pos += 1
        while pos < end:
            value_match = _VALUE.match(data, pos)
            raw_value = value_match.group(0)
            pos = value_match.end()
            if pos >= end:
                break
            param = data[pos]
            pos += 1
            try:
                value = int(float(raw_value)) if raw_value not in (b"", b"+", b"-", b".") else 0
            except ValueError:
                value = 0
            upper = param & ~0x20
            command = (first, group, upper)
            if command == (ord("*"), ord("v"), ord("W")) or (command == (ord("*"), ord("r"), ord("U")) and value != 1):
                colour_possible = True
            if upper == ord("W") or command in ((ord("*"), ord("b"), ord("V")), (ord("&"), ord("p"), ord("X"))):
                if command[:2] in ((ord("*"), ord("b")), (ord("&"), ord("p"))):
                    page.mark()
                pos += max(0, value)
            elif command == (ord("&"), ord("l"), ord("X")):
                data_copies = value if value > 0 else data_copies
            elif command == (ord("&"), ord("l"), ord("S")):
                data_duplex = value in (1, 2)
            elif command == (ord("&"), ord("l"), ord("A")) and paper == "unknown":
                paper = _PAGE_SIZES.get(value, "unknown")
            elif command == (ord("*"), ord("c"), ord("P")):
                page.mark()
            elif first == ord("%") and group == 0 and upper == ord("X") and value == -12345:
                page.eject(force=False)
                pjl = True
            elif first == ord("%") and group == 0 and upper == ord("B"):
                colour_possible = True
                pos = _skip_hpgl(data, pos, page)
            if 0x40 <= param <= 0x5E:
                break
    page.eject(force=False)
    return DocumentFacts("pcl5", page.pages, 0, not colour_possible, paper, data_copies, data_duplex)


def _skip_hpgl(data, pos: int, page: _Page) -> int:
    """Skip an HP-GL/2 section to the escape that leaves it; count its PG (page) commands."""
    nxt = data.find(b"\x1b", pos)
    if nxt < 0:
        nxt = len(data)
    section = data[pos:nxt]
    if section.strip(b" \r\n\t;"):
        page.mark()
    for _ in _HPGL_PG.finditer(section):
        page.eject(force=False)
    return nxt
