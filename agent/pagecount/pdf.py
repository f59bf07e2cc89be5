"""Counting PDF pages; paper size from the first page's media box; colour where cheap.

When the job does not need colour (monochrome), the page count and paper come from
``pdf_structure`` without importing pypdf (a third of a backend's start-up); anything it is
not sure of, and every colour count, goes through pypdf.

Colour is read from each page's content stream operators (non-grey ``rg``/``RG``/``k``/``K``/
``sc``/``scn``) and from the colour spaces of the images it draws. A colour space with
three or four components marks the page as colour even when its pixels happen to be grey:
telling that would mean decoding every image.
"""
from __future__ import annotations

import io
import logging
import re

from agent.pagecount import pdf_structure
from agent.pagecount.facts import DocumentFacts, mapped
from agent.pagecount.paper import paper_from_points

logging.getLogger("pypdf").setLevel(logging.ERROR)

# Pages whose content streams together exceed this are not analysed for colour (speed cap).
COLOUR_SCAN_LIMIT_BYTES = 256 * 1024 * 1024

_NUM = rb"([-+]?(?:\d+\.?\d*|\.\d+))"
_RGB_OP = re.compile(_NUM + rb"\s+" + _NUM + rb"\s+" + _NUM + rb"\s+(?:rg|RG|sc|SC|scn|SCN)\b")
_CMYK_OP = re.compile(_NUM + rb"\s+" + _NUM + rb"\s+" + _NUM + rb"\s+" + _NUM + rb"\s+(?:k|K|sc|SC|scn|SCN)\b")
_COLOUR_SPACES = {"/DeviceRGB", "/DeviceCMYK", "/CalRGB", "/Lab", "/DeviceN", "/Separation"}
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def _is_colour_space(space, depth: int = 0) -> bool:
    from pypdf.generic import ArrayObject, IndirectObject, NameObject

    if depth > 4 or space is None:
        return False
    if isinstance(space, IndirectObject):
        space = space.get_object()
    if isinstance(space, NameObject):
        return str(space) in _COLOUR_SPACES
    if isinstance(space, ArrayObject) and space:
        family = str(space[0])
        if family == "/ICCBased":
            stream = space[1].get_object()
            return int(stream.get("/N", 1)) >= 3
        if family == "/Indexed":
            return _is_colour_space(space[1], depth + 1)
        if family == "/Separation":
            # A single named ink; black is the only grey one.
            return str(space[1]) not in ("/Black", "/All", "/None")
        return family in _COLOUR_SPACES
    return False


def _has_colour_ops(content: bytes) -> bool:
    for match in _RGB_OP.finditer(content):
        r, g, b = (float(x) for x in match.groups())
        if not (r == g == b):
            return True
    for match in _CMYK_OP.finditer(content):
        c, m, y, _k = (float(x) for x in match.groups())
        if not (c == m == y):
            return True
    return False


def _has_colour_images(page) -> bool:
    resources = page.get("/Resources")
    if resources is None:
        return False
    resources = resources.get_object()
    shadings = resources.get("/Shading")
    if shadings is not None:
        for ref in shadings.get_object().values():
            if _is_colour_space(ref.get_object().get("/ColorSpace")):
                return True
    xobjects = resources.get("/XObject")
    if xobjects is None:
        return False
    for ref in xobjects.get_object().values():
        xobject = ref.get_object()
        if xobject.get("/Subtype") == "/Image" and not xobject.get("/ImageMask"):
            if _is_colour_space(xobject.get("/ColorSpace")):
                return True
        elif xobject.get("/Subtype") == "/Form":
            data = xobject.get_data() if hasattr(xobject, "get_data") else b""
            if _has_colour_ops(data):
                return True
    return False


def _page_is_colour(page) -> tuple[bool, int]:
    contents = page.get_contents()
    data = contents.get_data() if contents is not None else b""
    return _has_colour_ops(data) or _has_colour_images(page), len(data)


# Where a PDF starts right after another one ends: a job of several documents reaches the
# backend of a filtered queue as their PDFs one after the other on stdin.
_NEXT_DOCUMENT = re.compile(rb"%%EOF[ \t\r\n]*(?=%PDF-)")


def count(path: str, colour: bool = True) -> DocumentFacts:
    """``colour=False``: the caller does not need colour pages (reported as unknown).

    Concatenated PDFs (a multi-document job) are counted one by one and added up: a PDF
    reader alone would see only the last of them.
    """
    with mapped(path) as data:
        if data is None:  # empty file
            return DocumentFacts("pdf", 0)
        first = data.find(b"%PDF-")
        starts = [max(first, 0)] + [m.end() for m in _NEXT_DOCUMENT.finditer(data)]
        if len(starts) == 1:
            return _count_one(path, colour)
        ends = starts[1:] + [len(data)]
        parts = [_count_one(bytes(data[start:end]), colour) for start, end in zip(starts, ends)]
    return DocumentFacts("pdf", sum(p.pages or 0 for p in parts), sum(p.colour_pages for p in parts),
                         all(p.colour_known for p in parts), parts[0].paper_size)


def _count_one(source: str | bytes, colour: bool) -> DocumentFacts:
    """One PDF, from a file path or from bytes."""
    if not colour:
        try:
            if isinstance(source, str):
                pages, paper = pdf_structure.pages_and_paper(source)
            else:
                pages, paper = pdf_structure.pages_and_paper_in(source)
            return DocumentFacts("pdf", pages, 0, False, paper)
        except pdf_structure.Unsupported:
            pass
    from pypdf import PdfReader

    try:
        reader = PdfReader(source if isinstance(source, str) else io.BytesIO(source), strict=False)
        if reader.is_encrypted:
            reader.decrypt("")
        pages = reader.pages
        page_count = len(pages)
    except Exception:
        return _count_damaged(source)
    paper = "unknown"
    if page_count:
        box = pages[0].mediabox
        paper = paper_from_points(float(box.width), float(box.height))
    if not colour:
        return DocumentFacts("pdf", page_count, 0, False, paper)
    colour_pages = 0
    colour_known = True
    scanned = 0
    try:
        for page in pages:
            is_colour, size = _page_is_colour(page)
            scanned += size
            colour_pages += is_colour
            if scanned > COLOUR_SCAN_LIMIT_BYTES:
                colour_known, colour_pages = False, 0
                break
    except Exception:
        colour_known, colour_pages = False, 0
    return DocumentFacts("pdf", page_count, colour_pages, colour_known, paper)


def _count_damaged(source: str | bytes) -> DocumentFacts:
    """A PDF pypdf cannot open: count its page objects, the last resort of every PDF reader."""
    if isinstance(source, str):
        with open(source, "rb") as handle:
            source = handle.read()
    return DocumentFacts("pdf", len(_PAGE_OBJECT.findall(source)))
