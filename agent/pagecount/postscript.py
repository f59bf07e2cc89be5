"""Counting PostScript pages: DSC comments first, ``showpage`` when the comments are missing or lie.

DSC conforming producers write ``%%Pages: N`` (possibly ``(atend)`` with the number in the
trailer) and one ``%%Page:`` comment before each page. Hand-made or broken files may carry a
``%%Pages:`` header that does not match their body, or no comments at all. The ``%%Page:``
markers describe the body, so they win over the header. Without markers a positive
``%%Pages:`` is trusted (``showpage`` may hide behind an alias); without either,
``showpage`` operators in the program text are counted (procedure definitions such as
``/showpage {...}`` and comment lines are not). PostScript does not tell colour without
being interpreted.
"""
from __future__ import annotations

import re

from agent.pagecount.facts import DocumentFacts
from agent.pagecount.paper import paper_from_points

_SHOWPAGE = re.compile(rb"(?<![/\w])showpage(?![\w])")
_COPIES = re.compile(rb"/(?:#copies|NumCopies)\s+(\d+)")
_DUPLEX = re.compile(rb"/Duplex\s+(true|false)")
_PAGE_SIZE = re.compile(rb"/PageSize\s*\[\s*(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s*\]")


def count(path: str) -> DocumentFacts:
    dsc_pages: int | None = None
    page_comments = 0
    showpages = 0
    data_copies: int | None = None
    data_duplex: bool | None = None
    paper = "unknown"
    embedded_depth = 0  # inside %%BeginDocument (an included EPS): its %%Page: markers are not ours
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith(b"%%"):
                if line.startswith(b"%%Pages:"):
                    value = line[8:].strip()
                    if value.isdigit() and embedded_depth == 0:
                        # The trailer's value (after "(atend)") is the last one: keep the last.
                        dsc_pages = int(value)
                elif line.startswith(b"%%Page:"):
                    page_comments += embedded_depth == 0
                elif line.startswith(b"%%BeginDocument"):
                    embedded_depth += 1
                elif line.startswith(b"%%EndDocument"):
                    embedded_depth = max(0, embedded_depth - 1)
                elif line.startswith(b"%%DocumentMedia:") and paper == "unknown":
                    fields = line.split()
                    if len(fields) >= 4:
                        try:
                            paper = paper_from_points(float(fields[2]), float(fields[3]))
                        except ValueError:
                            pass
                continue
            if line.startswith(b"%"):
                continue
            if b"showpage" in line:
                showpages += len(_SHOWPAGE.findall(line))
            if b"/" in line:
                if b"copies" in line or b"NumCopies" in line:
                    match = _COPIES.search(line)
                    if match:
                        data_copies = int(match.group(1))
                if b"/Duplex" in line:
                    match = _DUPLEX.search(line)
                    if match:
                        data_duplex = match.group(1) == b"true"
                if paper == "unknown" and b"/PageSize" in line:
                    match = _PAGE_SIZE.search(line)
                    if match:
                        paper = paper_from_points(float(match.group(1)), float(match.group(2)))
    if page_comments:
        pages = page_comments
    elif dsc_pages is not None and (dsc_pages > 0 or showpages == 0):
        pages = dsc_pages
    else:
        pages = showpages
    return DocumentFacts("postscript", pages, 0, False, paper, data_copies, data_duplex)
