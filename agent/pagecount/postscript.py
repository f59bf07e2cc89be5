"""Counting PostScript pages: DSC comments first, ``showpage`` when the comments are missing or lie.

DSC conforming producers write ``%%Pages: N`` (possibly ``(atend)`` with the number in the
trailer) and one ``%%Page:`` comment before each page. Hand-made or broken files may carry a
``%%Pages:`` header that does not match their body, or no comments at all. The ``%%Page:``
markers describe the body, so they win over the header (markers inside an embedded EPS,
between ``%%BeginDocument`` and ``%%EndDocument``, are not the job's pages). Without markers
a positive ``%%Pages:`` is trusted (``showpage`` may hide behind an alias); without either,
``showpage`` operators in the program text are counted (procedure definitions such as
``/showpage {...}`` and comment lines are not). PostScript does not tell colour without
being interpreted; but a program that names no colour operator or colour space at all
(``setrgbcolor``, ``setcmykcolor``, ``sethsbcolor``, ``setcolorspace``, ``colorimage``,
``/DeviceRGB``...) can only print grey: its colour is known to be 0.

The DSC comments and settings are found with regular expressions over the mapped file (C
speed); only a file without page markers is read line by line for ``showpage``.

That structural count is what the document says. What it prints is what an interpreter emits:
``count`` runs Ghostscript (``agent.pagecount.ghostscript``, time-boxed) for the pages, each
page's paper and, when asked, each page's colour; the structural count stands only when
Ghostscript is missing, fails or runs out of time, and is then flagged ``pages_known`` False
(and colour unknown, unless the program names no colour operator at all).
"""
from __future__ import annotations

import mmap
import os
import re

from agent.pagecount import ghostscript
from agent.pagecount.facts import DocumentFacts, job_paper
from agent.pagecount.paper import paper_from_points
from agent.lazy_pattern import LazyPattern

# Anchored on the newline (a literal prefix the regex engine searches for at C speed; "^" with
# re.M would be tried at every byte, 20x slower). The file's first line is never DSC data.
_DSC = LazyPattern(rb"\n%%(Page:|Pages:[ \t]*(\d+|\(atend\))|BeginDocument|EndDocument|DocumentMedia:[^\n]*"
                  rb"|BoundingBox:[ \t]*0[ \t]+0[ \t]+(\d+)[ \t]+(\d+))")
_SHOWPAGE = LazyPattern(rb"(?<![/\w])showpage(?![\w])")
_COPIES = LazyPattern(rb"/(?:#copies|NumCopies)\s+(\d+)")
_DUPLEX = LazyPattern(rb"/Duplex\s+(true|false)")
_COLOUR_WORDS = LazyPattern(rb"set(?:rgb|cmyk|hsb)color|setcolorspace|colorimage|/Device(?:RGB|CMYK|N)|/Separation"
                           rb"|/CIEBased|/Indexed|/Pattern|/ICCBased")
_PAGE_SIZE = LazyPattern(rb"/PageSize\s*\[\s*(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s*\]")


def count(path: str, colour: bool = True, timeout: float = ghostscript.DEFAULT_TIMEOUT) -> DocumentFacts:
    """Pages, paper and colour as Ghostscript prints them; the structural count when it cannot.

    ``colour=False``: the job is printed in monochrome, colour is not looked at (faster).
    """
    said = count_structure(path)
    if os.path.getsize(path) == 0:
        return said
    interpreted = ghostscript.interpret(path, colour=colour and not said.colour_known, timeout=timeout,
                                        postscript=True)
    if interpreted is None:
        return said._replace(pages_known=False, unknown_reason="Ghostscript is not installed: pages as the "
                                                               "DSC comments or showpage operators say")
    if not interpreted.complete:
        return said._replace(pages=max(said.pages or 0, interpreted.pages), pages_known=False,
                       unknown_reason=interpreted.problem + ": pages as the DSC comments or showpage operators say")
    papers = interpreted.papers
    if said.colour_known:  # names no colour operator: grey whatever it draws
        colour_pages, colour_known = 0, True
    elif interpreted.colour_checked:
        colour_pages, colour_known = len(interpreted.colour_pages), True
    else:
        colour_pages, colour_known = 0, False
    return said._replace(pages=len(papers), colour_pages=colour_pages, colour_known=colour_known,
                   paper_size=job_paper(papers) if papers else said.paper_size, page_papers=papers,
                   colour_page_numbers=frozenset(interpreted.colour_pages) if colour_known else None)


def count_structure(path: str) -> DocumentFacts:
    """What the document's comments and operators say, without interpreting it."""
    with open(path, "rb") as handle:
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # empty file
            return DocumentFacts("postscript", 0)
        with data:
            return _count(data, handle)


def _count(data, handle) -> DocumentFacts:
    dsc_pages: int | None = None
    page_comments = 0
    embedded_depth = 0
    paper = "unknown"
    bbox_paper = "unknown"
    for match in _DSC.finditer(data):
        keyword = match.group(1)
        if keyword == b"Page:":
            page_comments += embedded_depth == 0
        elif keyword.startswith(b"Pages:"):
            value = match.group(2)
            if value and value.isdigit() and embedded_depth == 0:
                # The trailer's value (after "(atend)") comes last: keep the last.
                dsc_pages = int(value)
        elif keyword == b"BeginDocument":
            embedded_depth += 1
        elif keyword == b"EndDocument":
            embedded_depth = max(0, embedded_depth - 1)
        elif keyword.startswith(b"BoundingBox:"):
            # The marked area, not the paper: used only when it is exactly a paper size.
            if bbox_paper == "unknown":
                bbox_paper = paper_from_points(float(match.group(3)), float(match.group(4)))
        elif paper == "unknown":
            fields = keyword.split()
            if len(fields) >= 3:
                try:
                    paper = paper_from_points(float(fields[2]), float(fields[3]) if len(fields) > 3 else 0)
                except ValueError:
                    pass
    data_copies = _last_int(_COPIES, data)
    duplex_match = None
    for duplex_match in _DUPLEX.finditer(data):
        pass
    data_duplex = None if duplex_match is None else duplex_match.group(1) == b"true"
    if paper == "unknown":
        size = _PAGE_SIZE.search(data)
        if size:
            paper = paper_from_points(float(size.group(1)), float(size.group(2)))
    if paper == "unknown":
        paper = bbox_paper
    if page_comments:
        pages = page_comments
    else:
        showpages = _count_showpage(handle)
        pages = dsc_pages if dsc_pages is not None and (dsc_pages > 0 or showpages == 0) else showpages
    colour_known = _COLOUR_WORDS.search(data) is None
    return DocumentFacts("postscript", pages, 0, colour_known, paper, data_copies, data_duplex)


def _last_int(pattern: re.Pattern, data) -> int | None:
    value = None
    for match in pattern.finditer(data):
        value = int(match.group(1))
    return value


def _count_showpage(handle) -> int:
    handle.seek(0)
    showpages = 0
    for line in handle:
        if b"showpage" in line and not line.startswith(b"%"):
            showpages += len(_SHOWPAGE.findall(line))
    return showpages
