"""Counting PDF pages: the page tree's count, each page's paper from its media box, colour.

The page count, papers and colour come from ``pdf_structure`` without importing pypdf (a
third of a backend's start-up) whenever it can read the file; anything it is not sure of
(encryption, unusual filters, damage) goes through pypdf, and a file pypdf cannot open
either goes to Ghostscript, which repairs what qpdf and pdfinfo repair.

Colour is read from each page's content stream operators (``pdf_colour``: non-grey
``rg``/``RG``/``k``/``K``/``sc``/``scn``, a rich black is black). A page that draws images,
shadings, patterns or forms in colour spaces is "unsettled": its pixels may be grey. Those
pages alone are rendered by Ghostscript (``-sPageList``) to tell. Without Ghostscript, or
past its time box, they count as colour and the job's colour is flagged unknown.
"""
from __future__ import annotations

import io
import os

from agent.pagecount import ghostscript, pdf_structure
from agent.pagecount.pdf_colour import COLOUR_SPACES, GREY_INKS, has_colour_ops
from agent.pagecount.pdf_structure import COLOUR, GREY, UNSETTLED
from agent.pagecount.facts import DocumentFacts, job_paper, mapped
from agent.pagecount.paper import paper_from_points
from agent.lazy_pattern import LazyPattern

# Pages whose content streams together exceed this are not analysed for colour (speed cap).
COLOUR_SCAN_LIMIT_BYTES = 256 * 1024 * 1024

_COLOUR_SPACES = {"/" + name for name in COLOUR_SPACES}
_PAGE_OBJECT = LazyPattern(rb"/Type\s*/Page(?![a-zA-Z])")


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
            return str(space[1])[1:] not in GREY_INKS
        return family in _COLOUR_SPACES
    return False


def _has_colour_images(page) -> bool:
    """Whether the page draws images, shadings or forms in colour spaces (which may still be
    grey pixels: only an interpreter can tell)."""
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
            if has_colour_ops(data):
                return True
    return False




def _page_colour(page) -> tuple[str, int]:
    """The page's colour as its content stream says (GREY, COLOUR) or UNSETTLED when it draws
    something in a colour space whose pixels the operators do not tell; and the stream's size."""
    contents = page.get_contents()
    data = contents.get_data() if contents is not None else b""
    if has_colour_ops(data):
        return COLOUR, len(data)
    return (UNSETTLED if _has_colour_images(page) else GREY), len(data)


# Where a PDF starts right after another one ends: a job of several documents reaches the
# backend of a filtered queue as their PDFs one after the other on stdin.
_NEXT_DOCUMENT = LazyPattern(rb"%%EOF[ \t\r\n]*(?=%PDF-)")


def count(path: str, colour: bool = True, timeout: float = ghostscript.DEFAULT_TIMEOUT) -> DocumentFacts:
    """``colour=False``: the caller does not need colour pages (reported as unknown).

    Concatenated PDFs (a multi-document job) are counted one by one and added up: a PDF
    reader alone would see only the last of them.
    """
    with mapped(path) as data:
        if data is None:  # empty file
            return DocumentFacts("pdf", 0, pages_known=False, unknown_reason="empty file")
        first = data.find(b"%PDF-")
        starts = [max(first, 0)] + [m.end() for m in _NEXT_DOCUMENT.finditer(data)]
        if len(starts) == 1:
            return _count_one(path, colour, timeout)
        ends = starts[1:] + [len(data)]
        parts = [_count_one(bytes(data[start:end]), colour, timeout) for start, end in zip(starts, ends)]
    papers = [paper for part in parts for paper in part.papers()]
    coloured: set[int] | None = set()
    offset = 0
    for part in parts:
        if part.colour_page_numbers is None:
            coloured = None
        elif coloured is not None:
            coloured.update(offset + n for n in part.colour_page_numbers)
        offset += part.pages or 0
    return DocumentFacts("pdf", sum(p.pages or 0 for p in parts), sum(p.colour_pages for p in parts),
                         all(p.colour_known for p in parts), job_paper(papers), page_papers=papers,
                         colour_page_numbers=None if coloured is None else frozenset(coloured),
                         pages_known=all(p.pages_known for p in parts),
                         unknown_reason="; ".join(p.unknown_reason for p in parts if p.unknown_reason))


def _count_one(source: str | bytes, colour: bool, timeout: float) -> DocumentFacts:
    """One PDF, from a file path or from bytes."""
    if not colour:
        try:
            if isinstance(source, str):
                pages, papers = pdf_structure.pages_and_paper(source)
            else:
                pages, papers = pdf_structure.pages_and_paper_in(source)
            return DocumentFacts("pdf", pages, 0, False, job_paper(papers), page_papers=papers)
        except pdf_structure.Unsupported:
            pass
    else:
        try:
            if isinstance(source, str):
                page_count, papers, colours = pdf_structure.pages_papers_and_colours(source)
            else:
                page_count, papers, colours = pdf_structure.pages_papers_and_colours_in(source)
            if page_count:
                return _with_colours(source, page_count, papers, colours, timeout)
        except pdf_structure.Unsupported:
            pass
    import logging  # with pypdf only: what a document pypdf must read costs anyway

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(source if isinstance(source, str) else io.BytesIO(source), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return _encrypted(reader)
        pages = reader.pages
        page_count = len(pages)
        papers = [paper_from_points(float(page.mediabox.width), float(page.mediabox.height)) for page in pages]
    except Exception:
        return _count_damaged(source, colour, timeout)
    if page_count == 0:
        return _count_damaged(source, colour, timeout)
    if not colour:
        return DocumentFacts("pdf", page_count, 0, False, job_paper(papers), page_papers=papers)
    colours: list[str] = []
    scanned = 0
    try:
        for page in pages:
            verdict, size = _page_colour(page)
            scanned += size
            colours.append(verdict)
            if scanned > COLOUR_SCAN_LIMIT_BYTES:
                return DocumentFacts("pdf", page_count, 0, False, job_paper(papers), page_papers=papers,
                                     unknown_reason="content too large to look for colour")
    except Exception as err:
        return DocumentFacts("pdf", page_count, 0, False, job_paper(papers), page_papers=papers,
                             unknown_reason=f"content not readable for colour ({type(err).__name__})")
    return _with_colours(source, page_count, papers, colours, timeout)


def _with_colours(source: str | bytes, page_count: int, papers: list[str], colours: list[str],
                  timeout: float) -> DocumentFacts:
    """The facts from each page's colour verdict, rendering the unsettled pages to settle them."""
    colour_pages = colours.count(COLOUR)
    unsettled = [number for number, verdict in enumerate(colours, 1) if verdict == UNSETTLED]
    coloured = frozenset(number for number, verdict in enumerate(colours, 1) if verdict == COLOUR)
    if not unsettled:
        return DocumentFacts("pdf", page_count, colour_pages, True, job_paper(papers), page_papers=papers,
                             colour_page_numbers=coloured)
    return _settle_colour(source, page_count, coloured, unsettled, papers, timeout)


def _settle_colour(source: str | bytes, page_count: int, coloured: frozenset[int], unsettled: list[int],
                   papers: list[str], timeout: float) -> DocumentFacts:
    """Render the pages whose images or shadings are in colour spaces: are their pixels colour?"""
    with _as_file(source) as path:
        seen = ghostscript.interpret(path, colour=True, timeout=timeout, page_numbers=unsettled,
                                     page_list=",".join(map(str, unsettled)))
    if seen is None or not seen.complete or seen.pages != len(unsettled):
        why = "Ghostscript is not installed" if seen is None else (seen.problem or "Ghostscript rendered other pages")
        # Not a confident number: every page that might be colour counted as colour, flagged.
        return DocumentFacts("pdf", page_count, len(coloured) + len(unsettled), False, job_paper(papers),
                             page_papers=papers, colour_page_numbers=coloured | frozenset(unsettled),
                             unknown_reason=f"colour of {len(unsettled)} pages with images not settled ({why})")
    coloured |= seen.colour_pages
    return DocumentFacts("pdf", page_count, len(coloured), True, job_paper(papers), page_papers=papers,
                         colour_page_numbers=coloured)


def _encrypted(reader) -> DocumentFacts:
    """A PDF locked with a user password: pypdf still reads its page tree (it is not encrypted,
    only strings and streams are), but the content, hence colour, stays unknown."""
    try:
        pages = reader.pages
        papers = [paper_from_points(float(page.mediabox.width), float(page.mediabox.height)) for page in pages]
        return DocumentFacts("pdf", len(papers), 0, False, job_paper(papers), page_papers=papers,
                             unknown_reason="encrypted with a password: colour not readable")
    except Exception:
        stream = getattr(reader, "stream", None)
        data = stream.getvalue() if hasattr(stream, "getvalue") else b""
        if not data and stream is not None:
            stream.seek(0)
            data = stream.read()
        pages = len(_PAGE_OBJECT.findall(data))
        return DocumentFacts("pdf", pages, 0, False, pages_known=False,
                             unknown_reason=f"encrypted with a password: {pages} page objects found, "
                                            "pages and colour not readable")


class _as_file:
    """A path for the source: the file itself, or the bytes written to a temporary file."""

    def __init__(self, source: str | bytes):
        self.source = source
        self.temp = None

    def __enter__(self) -> str:
        if isinstance(self.source, str):
            return self.source
        import tempfile

        fd, self.temp = tempfile.mkstemp(suffix=".pdf", prefix="pageledger-part-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.source)
        return self.temp

    def __exit__(self, *exc) -> None:
        if self.temp:
            os.unlink(self.temp)


_MEDIA_BOX = LazyPattern(rb"/MediaBox\s*\[\s*([-+\d.]+)\s+([-+\d.]+)\s+([-+\d.]+)\s+([-+\d.]+)\s*\]")


def _count_damaged(source: str | bytes, colour: bool, timeout: float) -> DocumentFacts:
    """A PDF pypdf cannot open: Ghostscript repairs what it can (as qpdf and pdfinfo do); when
    it cannot, its page objects are counted, the last resort of every PDF reader, and flagged."""
    with _as_file(source) as path:
        seen = ghostscript.interpret(path, colour=colour, timeout=timeout)
        if seen is not None and seen.complete and seen.pages:
            return DocumentFacts("pdf", seen.pages, len(seen.colour_pages), seen.colour_checked,
                                 job_paper(seen.papers), page_papers=seen.papers,
                                 colour_page_numbers=frozenset(seen.colour_pages) if colour else None)
        with open(path, "rb") as handle:
            data = handle.read()
    why = "Ghostscript is not installed" if seen is None else (seen.problem or "Ghostscript found no page")
    pages = len(_PAGE_OBJECT.findall(data))
    boxes = [paper_from_points(abs(float(x1) - float(x0)), abs(float(y1) - float(y0)))
             for x0, y0, x1, y1 in _MEDIA_BOX.findall(data)]
    paper = job_paper(boxes) if boxes else "unknown"
    return DocumentFacts("pdf", pages or None, 0, False, paper, pages_known=False,
                         unknown_reason=f"damaged PDF, not repaired ({why}): {pages} page objects found")
