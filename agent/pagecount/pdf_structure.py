"""A minimal reader of PDF structure (no pypdf): cross-reference tables and streams, object
streams, the page tree's ``/Count`` and the first page's media box.

It exists for speed: importing pypdf costs a backend process about 100 ms, more than the
rest of its work, and a job printed in monochrome needs only the page count and paper size.
Anything it does not handle for sure (encryption, filters other than Flate, TIFF predictors,
damaged cross-references) raises ``Unsupported`` and the caller falls back to pypdf, which
reads ``/Count`` the same way.
"""
from __future__ import annotations

import mmap
import zlib

from agent.pagecount.paper import paper_from_points
from agent.pagecount.pdf_colour import COLOUR_SPACES, GREY_INKS, has_colour_ops
from agent.lazy_pattern import LazyPattern


class Unsupported(Exception):
    """Not a PDF this reader is sure about; use the full parser."""


class Name(str):
    """A PDF name (``/Type``), told apart from strings."""


class HexString(bytes):
    """A hex string's digits (``<48656C6C6F>``), told apart from a literal string's body."""


class Ref(tuple):
    """An indirect reference ``(object number, generation)``."""


class Stream:
    """A stream object: its dictionary and its raw (still encoded) bytes."""

    def __init__(self, header: dict, raw: bytes):
        self.header = header
        self.raw = raw


_WHITESPACE = b" \t\r\n\f\x00"
_DELIMITERS = b"()<>[]{}/%"
_NUMBER = LazyPattern(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
_REF_TAIL = LazyPattern(rb"\s+(\d+)\s+R(?![A-Za-z0-9])")
_OBJ_HEADER = LazyPattern(rb"\s*(\d+)\s+(\d+)\s+obj")
_XREF_SUBSECTION = LazyPattern(rb"\s*(\d+)\s+(\d+)\s*\r?\n?")
_XREF_ENTRY = LazyPattern(rb"(\d{10}) (\d{5}) ([nf])")
_STARTXREF = LazyPattern(rb"startxref\s+(\d+)")
MAX_DEPTH = 64


class PdfStructure:
    """The objects of one PDF, found through its cross-reference sections, read on demand."""

    def __init__(self, data):
        self.data = data
        self.offsets: dict[int, tuple] = {}
        self.cache: dict[int, object] = {}
        self.trailer = self._read_xref()

    # -- objects -------------------------------------------------------------------------

    def _skip(self, pos: int) -> int:
        data, end = self.data, len(self.data)
        while pos < end:
            c = data[pos]
            if c in _WHITESPACE:
                pos += 1
            elif c == 0x25:  # % comment
                while pos < end and data[pos] not in b"\r\n":
                    pos += 1
            else:
                break
        return pos

    def parse(self, pos: int, depth: int = 0):
        if depth > MAX_DEPTH:
            raise Unsupported("objects nested too deep")
        data = self.data
        pos = self._skip(pos)
        if pos >= len(data):
            raise Unsupported("unexpected end of data")
        c = data[pos]
        if c == 0x3C and data[pos + 1:pos + 2] == b"<":  # << dict >>
            pos += 2
            result = {}
            while True:
                pos = self._skip(pos)
                if data[pos:pos + 2] == b">>":
                    return result, pos + 2
                key, pos = self.parse(pos, depth + 1)
                if not isinstance(key, Name):
                    raise Unsupported("dictionary key is not a name")
                value, pos = self.parse(pos, depth + 1)
                result[key] = value
        if c == 0x3C:  # <hex string>
            close = data.find(b">", pos)
            if close < 0:
                raise Unsupported("unterminated hex string")
            return HexString(data[pos + 1:close]), close + 1
        if c == 0x5B:  # [ array ]
            pos += 1
            items = []
            while True:
                pos = self._skip(pos)
                if data[pos:pos + 1] == b"]":
                    return items, pos + 1
                item, pos = self.parse(pos, depth + 1)
                items.append(item)
        if c == 0x28:  # (literal string)
            level, pos = 1, pos + 1
            start = pos
            while level:
                ch = data[pos]
                if ch == 0x5C:
                    pos += 2
                    continue
                level += (ch == 0x28) - (ch == 0x29)
                pos += 1
            return bytes(data[start:pos - 1]), pos
        if c == 0x2F:  # /Name
            end = pos + 1
            while end < len(data) and data[end] not in _WHITESPACE and data[end] not in _DELIMITERS:
                end += 1
            return Name(bytes(data[pos + 1:end]).decode("latin-1")), end
        match = _NUMBER.match(data, pos)
        if match:
            text = match.group(0)
            if b"." not in text:
                ref = _REF_TAIL.match(data, match.end())
                if ref:
                    return Ref((int(text), int(ref.group(1)))), ref.end()
                return int(text), match.end()
            return float(text), match.end()
        for word, value in ((b"true", True), (b"false", False), (b"null", None)):
            if data[pos:pos + len(word)] == word:
                return value, pos + len(word)
        raise Unsupported(f"unexpected byte {c!r} at {pos}")

    def _indirect_at(self, pos: int, number: int | None = None):
        header = _OBJ_HEADER.match(self.data, pos)
        if not header or (number is not None and int(header.group(1)) != number):
            raise Unsupported(f"object {number} not found at {pos}")
        value, pos = self.parse(header.end())
        after = self._skip(pos)
        if isinstance(value, dict) and self.data[after:after + 6] == b"stream":
            start = after + 6
            if self.data[start:start + 2] == b"\r\n":
                start += 2
            elif self.data[start:start + 1] in (b"\n", b"\r"):
                start += 1
            length = self.resolve(value.get("Length"))
            if not isinstance(length, int) or length < 0 or start + length > len(self.data):
                raise Unsupported("bad stream length")
            return Stream(value, bytes(self.data[start:start + length]))
        return value

    def get(self, number: int):
        if number in self.cache:
            return self.cache[number]
        entry = self.offsets.get(number)
        if entry is None:
            value = None
        elif entry[0] == "o":
            self.cache[number] = None  # guards against a stream whose /Length refers to itself
            value = self._indirect_at(entry[1], number)
        else:
            value = self._from_object_stream(entry[1], entry[2], number)
        self.cache[number] = value
        return value

    def resolve(self, value, depth: int = 0):
        while isinstance(value, Ref):
            depth += 1
            if depth > MAX_DEPTH:
                raise Unsupported("reference loop")
            value = self.get(value[0])
        return value

    def _from_object_stream(self, stream_number: int, index: int, number: int):
        stream = self.get(stream_number)
        if not isinstance(stream, Stream):
            raise Unsupported("object stream missing")
        data = decode(stream, self)
        count, first = stream.header.get("N"), stream.header.get("First")
        numbers = [int(x) for x in data[:first].split()]
        if not isinstance(count, int) or len(numbers) < 2 * count or index >= count or numbers[2 * index] != number:
            raise Unsupported("object stream index does not match")
        sub = PdfStructure.__new__(PdfStructure)
        sub.data = data
        value, _ = sub.parse(first + numbers[2 * index + 1])
        return value

    # -- cross-reference -----------------------------------------------------------------

    def _read_xref(self) -> dict:
        tail = bytes(self.data[-4096:])
        matches = list(_STARTXREF.finditer(tail))
        if not matches:
            raise Unsupported("no startxref")
        pos: int | None = int(matches[-1].group(1))
        trailer: dict | None = None
        seen = set()
        while pos is not None:
            if pos in seen or pos >= len(self.data):
                raise Unsupported("cross-reference chain loops or points outside the file")
            seen.add(pos)
            if self.data[pos:pos + 4] == b"xref":
                section = self._read_xref_table(pos + 4)
                if isinstance(section.get("XRefStm"), int):
                    self._read_xref_stream(section["XRefStm"])
            else:
                section = self._read_xref_stream(pos)
            trailer = trailer or section
            prev = section.get("Prev")
            pos = prev if isinstance(prev, int) else None
        if "Encrypt" in trailer:
            raise Unsupported("encrypted")
        return trailer

    def _read_xref_table(self, pos: int) -> dict:
        data = self.data
        while True:
            pos = self._skip(pos)
            if data[pos:pos + 7] == b"trailer":
                trailer, _ = self.parse(pos + 7)
                return trailer
            sub = _XREF_SUBSECTION.match(data, pos)
            if not sub:
                raise Unsupported("bad xref subsection")
            first, count = int(sub.group(1)), int(sub.group(2))
            pos = sub.end()
            for number in range(first, first + count):
                pos = self._skip(pos)
                entry = _XREF_ENTRY.match(data, pos)
                if not entry:
                    raise Unsupported("bad xref entry")
                if entry.group(3) == b"n":
                    self.offsets.setdefault(number, ("o", int(entry.group(1))))
                else:
                    self.offsets.setdefault(number, ("f",))
                pos = entry.end()

    def _read_xref_stream(self, pos: int) -> dict:
        stream = self._indirect_at(pos)
        if not isinstance(stream, Stream) or stream.header.get("Type") != "XRef":
            raise Unsupported("no cross-reference stream where startxref points")
        widths = stream.header.get("W")
        if not (isinstance(widths, list) and len(widths) == 3 and all(isinstance(w, int) for w in widths)):
            raise Unsupported("bad /W")
        size = stream.header.get("Size")
        index = stream.header.get("Index") or [0, size]
        data = decode(stream, self)
        offset = 0
        for first, count in zip(index[0::2], index[1::2]):
            for number in range(first, first + count):
                fields = []
                for width in widths:
                    fields.append(int.from_bytes(data[offset:offset + width], "big") if width else None)
                    offset += width
                kind = 1 if widths[0] == 0 else fields[0]
                if kind == 1:
                    self.offsets.setdefault(number, ("o", fields[1]))
                elif kind == 2:
                    self.offsets.setdefault(number, ("s", fields[1], fields[2]))
                else:
                    self.offsets.setdefault(number, ("f",))
            if offset > len(data):
                raise Unsupported("cross-reference stream too short")
        return stream.header


def decode(stream: Stream, pdf: PdfStructure) -> bytes:
    filters = pdf.resolve(stream.header.get("Filter"))
    params = pdf.resolve(stream.header.get("DecodeParms"))
    if isinstance(filters, list):
        if len(filters) > 1:
            raise Unsupported("filter chain")
        filters = filters[0] if filters else None
        params = params[0] if isinstance(params, list) and params else params
    if filters is None:
        data = stream.raw
    elif filters == "FlateDecode":
        try:
            data = zlib.decompress(stream.raw)
        except zlib.error:
            raise Unsupported("bad Flate data") from None
    else:
        raise Unsupported(f"filter {filters}")
    predictor = params.get("Predictor", 1) if isinstance(params, dict) else 1
    if predictor >= 10:
        columns = params.get("Columns", 1)
        if params.get("Colors", 1) != 1 or params.get("BitsPerComponent", 8) != 8:
            raise Unsupported("predictor parameters")
        data = _png_unpredict(data, columns)
    elif predictor != 1:
        raise Unsupported("TIFF predictor")
    return data


def _png_unpredict(data: bytes, columns: int) -> bytes:
    out = bytearray()
    previous = bytearray(columns)
    stride = columns + 1
    for start in range(0, len(data) - columns, stride):
        kind = data[start]
        row = bytearray(data[start + 1:start + stride])
        if kind == 1:
            for i in range(1, columns):
                row[i] = (row[i] + row[i - 1]) & 0xFF
        elif kind == 2:
            for i in range(columns):
                row[i] = (row[i] + previous[i]) & 0xFF
        elif kind != 0:
            raise Unsupported(f"PNG predictor {kind}")
        out += row
        previous = row
    return bytes(out)


def pages_and_paper(path: str) -> tuple[int, list[str]]:
    """(page count, each page's paper name) read from the page tree; ``Unsupported`` otherwise."""
    with open(path, "rb") as handle:
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise Unsupported("empty file") from None
        with data:
            return pages_and_paper_in(data)


def pages_and_paper_in(data) -> tuple[int, list[str]]:
    """The same for a PDF held in ``data`` (bytes or a mapped file)."""
    try:
        pdf = PdfStructure(data)
        root = pdf.resolve(pdf.trailer.get("Root"))
        pages = pdf.resolve(root.get("Pages")) if isinstance(root, dict) else None
        count = pdf.resolve(pages.get("Count")) if isinstance(pages, dict) else None
        if not isinstance(count, int) or count < 0:
            raise Unsupported("no page count")
        papers = _page_papers(pdf, pages)
        if len(papers) != count:
            raise Unsupported(f"/Count {count} but {len(papers)} pages in the page tree")
        return count, papers
    except (IndexError, ValueError, TypeError, AttributeError, KeyError) as err:
        raise Unsupported(f"malformed: {err}") from None


def _box_paper(pdf: PdfStructure, box) -> str:
    if not isinstance(box, list) or len(box) != 4:
        return "unknown"
    x0, y0, x1, y1 = (float(pdf.resolve(v)) for v in box)
    return paper_from_points(abs(x1 - x0), abs(y1 - y0))


MAX_PAGES = 1_000_000


def _page_papers(pdf: PdfStructure, root: dict) -> list[str]:
    return [_box_paper(pdf, box) for _page, box, _resources in _pages(pdf, root)]


def _pages(pdf: PdfStructure, root: dict) -> list[tuple[dict, object, object]]:
    """Each page's dictionary, media box and resources (inherited from its parents when it has
    none), walking the page tree depth first in page order."""
    pages: list[tuple[dict, object, object]] = []
    seen: set[int] = set()
    stack = [(root, pdf.resolve(root.get("MediaBox")), root.get("Resources"), 0)]
    while stack:
        node, inherited, inherited_resources, depth = stack.pop()
        if depth > MAX_DEPTH or len(pages) > MAX_PAGES:
            raise Unsupported("page tree too deep or too large")
        box = pdf.resolve(node.get("MediaBox")) or inherited
        resources = node.get("Resources") or inherited_resources
        if node.get("Type") == "Pages" or "Kids" in node:
            kids = pdf.resolve(node.get("Kids"))
            if not isinstance(kids, list):
                raise Unsupported("page tree node without kids")
            for kid in reversed(kids):
                if isinstance(kid, Ref):
                    if kid[0] in seen:
                        raise Unsupported("page tree loops")
                    seen.add(kid[0])
                child = pdf.resolve(kid)
                if not isinstance(child, dict):
                    raise Unsupported("page tree node is not a dictionary")
                stack.append((child, box, resources, depth + 1))
        else:
            pages.append((node, box, resources))
    return pages


GREY, COLOUR, UNSETTLED = "grey", "colour", "unsettled"
MAX_CONTENT_BYTES = 64 << 20  # decoded content of one document looked at for colour


def pages_papers_and_colours(path: str) -> tuple[int, list[str], list[str]]:
    """(page count, each page's paper, each page's colour: GREY, COLOUR or UNSETTLED when it
    draws images, shadings or forms in colour spaces) from the structure alone; ``Unsupported``
    when anything is beyond this reader (the caller then uses pypdf)."""
    with open(path, "rb") as handle:
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise Unsupported("empty file") from None
        with data:
            return pages_papers_and_colours_in(data)


def pages_papers_and_colours_in(data) -> tuple[int, list[str], list[str]]:
    try:
        pdf = PdfStructure(data)
        root = pdf.resolve(pdf.trailer.get("Root"))
        tree = pdf.resolve(root.get("Pages")) if isinstance(root, dict) else None
        count = pdf.resolve(tree.get("Count")) if isinstance(tree, dict) else None
        if not isinstance(count, int) or count < 0:
            raise Unsupported("no page count")
        pages = _pages(pdf, tree)
        if len(pages) != count:
            raise Unsupported(f"/Count {count} but {len(pages)} pages in the page tree")
        budget = [MAX_CONTENT_BYTES]
        colours = [_page_colour(pdf, page, resources, budget) for page, _box, resources in pages]
        return count, [_box_paper(pdf, box) for _page, box, _resources in pages], colours
    except (IndexError, ValueError, TypeError, AttributeError, KeyError, RecursionError) as err:
        raise Unsupported(f"malformed: {err}") from None


def _content(pdf: PdfStructure, contents, budget: list[int]) -> bytes:
    contents = pdf.resolve(contents)
    parts = contents if isinstance(contents, list) else [contents] if contents is not None else []
    out = []
    for part in parts:
        stream = pdf.resolve(part)
        if not isinstance(stream, Stream):
            raise Unsupported("page content is not a stream")
        decoded = decode(stream, pdf)
        budget[0] -= len(decoded)
        if budget[0] < 0:
            raise Unsupported("too much content to look at")
        out.append(decoded)
    return b"\n".join(out)


# An inline image (BI ... ID) in a colour space: its pixels are for the interpreter to tell.
_INLINE_COLOUR_IMAGE = LazyPattern(rb"\bBI\b[\s\S]{0,300}?/(?:CS|ColorSpace)\s*"
                                  rb"/(?:RGB|CMYK|DeviceRGB|DeviceCMYK|I\b|Indexed)")


def _page_colour(pdf: PdfStructure, page: dict, resources, budget: list[int], depth: int = 0) -> str:
    if depth > 8:
        raise Unsupported("forms nested too deep")
    content = _content(pdf, page.get("Contents"), budget)
    if has_colour_ops(content):
        return COLOUR
    verdict = _resources_colour(pdf, resources, budget, depth)
    if verdict == GREY and b"BI" in content and _INLINE_COLOUR_IMAGE.search(content):
        return UNSETTLED
    return verdict


def _resources_colour(pdf: PdfStructure, resources, budget: list[int], depth: int) -> str:
    resources = pdf.resolve(resources)
    if not isinstance(resources, dict):
        return GREY
    verdict = GREY
    shadings = pdf.resolve(resources.get("Shading"))
    if isinstance(shadings, dict):
        for ref in shadings.values():
            shading = pdf.resolve(ref)
            header = shading.header if isinstance(shading, Stream) else shading
            if isinstance(header, dict) and _is_colour_space(pdf, header.get("ColorSpace")):
                verdict = UNSETTLED
    patterns = pdf.resolve(resources.get("Pattern"))
    if isinstance(patterns, dict) and patterns:
        verdict = UNSETTLED  # a pattern paints what its own content says: left to the interpreter
    xobjects = pdf.resolve(resources.get("XObject"))
    if isinstance(xobjects, dict):
        for ref in xobjects.values():
            xobject = pdf.resolve(ref)
            if not isinstance(xobject, Stream):
                continue
            kind = xobject.header.get("Subtype")
            if kind == "Image" and not pdf.resolve(xobject.header.get("ImageMask")):
                if _is_colour_space(pdf, xobject.header.get("ColorSpace")):
                    verdict = UNSETTLED
            elif kind == "Form":
                inner = _page_colour(pdf, {"Contents": ref}, xobject.header.get("Resources"), budget, depth + 1)
                if inner == COLOUR:
                    return COLOUR
                if inner == UNSETTLED:
                    verdict = UNSETTLED
    return verdict


def _is_colour_space(pdf: PdfStructure, space, depth: int = 0) -> bool:
    space = pdf.resolve(space)
    if depth > 4 or space is None:
        return False
    if isinstance(space, Name):
        return str(space) in COLOUR_SPACES
    if isinstance(space, list) and space:
        family = str(pdf.resolve(space[0]))
        if family == "ICCBased":
            stream = pdf.resolve(space[1])
            header = stream.header if isinstance(stream, Stream) else {}
            return int(pdf.resolve(header.get("N", 1))) >= 3
        if family == "Indexed":
            return _is_colour_space(pdf, space[1], depth + 1)
        if family == "Separation":
            return str(pdf.resolve(space[1])) not in GREY_INKS
        return family in COLOUR_SPACES
    return False
