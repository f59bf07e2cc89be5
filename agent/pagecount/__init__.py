"""Page counting: one module per page description language, chosen by the data's magic bytes.

``count_document`` reads what the data says; ``count_job`` applies a job's copies, duplex and
N-up to it exactly once. Two classic accounting bugs are avoided here on purpose: copies
are never multiplied twice (when the command line asks for copies the data's own copy count
is ignored, and the other way round), and logical pages are never taken for sheets.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from agent.pagecount.detect import detect_format, read_head
from agent.pagecount.facts import DocumentFacts

# Format -> module with its ``count(path)``; imported when first needed, so a backend handed
# a PostScript job does not pay for importing pypdf.
COUNTERS = {
    "pdf": "agent.pagecount.pdf",
    "postscript": "agent.pagecount.postscript",
    "pwg-raster": "agent.pagecount.pwg_raster",
    "urf": "agent.pagecount.urf",
    "pcl5": "agent.pagecount.pcl5",
    "pclxl": "agent.pagecount.pclxl",
    "text": "agent.pagecount.text",
}


@dataclass(frozen=True)
class JobCount:
    """A job's counts as the server wants them.

    ``pages`` are impressions per copy (after N-up), ``sheets`` the paper used by all copies,
    ``colour_pages`` colour impressions per copy. ``pages`` is None for an unknown format.
    """

    format: str
    pages: int | None
    sheets: int | None
    colour_pages: int
    colour_known: bool
    paper_size: str
    bytes: int
    copies: int
    duplex: bool
    document_pages: int | None
    error: str = ""

    def as_json(self) -> dict:
        return {"format": self.format, "pages": self.pages, "sheets": self.sheets,
                "colour_pages": self.colour_pages, "paper_size": self.paper_size,
                "bytes": self.bytes, "colour_known": self.colour_known,
                "copies": self.copies, "duplex": self.duplex}


def count_document(path: str, *, colour: bool = True) -> DocumentFacts:
    """Facts of the document at ``path``; format "unknown" (pages None) when it cannot tell.

    ``colour=False`` lets a counter skip colour work the job does not need (PDF).
    """
    fmt = detect_format(read_head(path))
    module = COUNTERS.get(fmt)
    if module is None:
        return DocumentFacts("unknown", None)
    counter = importlib.import_module(module)
    return counter.count(path, colour=colour) if fmt == "pdf" else counter.count(path)


def pages_in_ranges(pages: int, page_ranges: str) -> int:
    """How many of pages 1..``pages`` an IPP ``page-ranges`` value ("1-3,7,10-") selects."""
    if not page_ranges.strip():
        return pages
    selected: set[int] = set()
    for part in page_ranges.split(","):
        first, sep, last = part.strip().partition("-")
        try:
            low = int(first) if first else 1
            high = (int(last) if last else pages) if sep else low
        except ValueError:
            raise ValueError(f"bad page-ranges {page_ranges!r}") from None
        selected.update(range(max(1, low), min(pages, high) + 1))
    return len(selected)


def count_job(path: str, *, copies: int = 1, duplex: bool | None = None, number_up: int = 1,
              imposed: bool = False, monochrome: bool = False, page_ranges: str = "") -> JobCount:
    """Count the job whose data is at ``path``.

    ``copies``/``duplex`` come from the job's options (CUPS argv); when the job does not ask
    (copies 1, duplex None) the document's own request is used, never both. ``imposed`` says
    the data already has N-up applied (CUPS filters did it), so ``number_up`` is not applied
    again, nor are ``page_ranges`` (applied to the document's pages otherwise; the colour
    count then keeps at most one colour page per selected page). ``monochrome`` (print-color-mode=monochrome) makes every impression grey.
    """
    if copies < 1:
        raise ValueError("copies must be at least 1")
    if number_up < 1:
        raise ValueError("number-up must be at least 1")
    size = os.path.getsize(path)
    error = ""
    try:
        facts = count_document(path, colour=not monochrome)
    except Exception as err:  # a damaged document must not stop the job from being accounted
        facts = DocumentFacts("unknown", None)
        error = f"{type(err).__name__}: {err}"
    effective_copies = copies if copies > 1 else (facts.data_copies or 1)
    effective_duplex = duplex if duplex is not None else bool(facts.data_duplex)
    colour_pages, colour_known = facts.colour_pages, facts.colour_known
    if facts.pages is None:
        return JobCount(facts.format, None, None, 0, False, facts.paper_size, size,
                        effective_copies, effective_duplex, None, error)
    pages = facts.pages
    if page_ranges and not imposed:
        pages = pages_in_ranges(pages, page_ranges)
        colour_pages = min(colour_pages, pages)
    if number_up > 1 and not imposed:
        pages = -(-pages // number_up)
        # A sheet side is colour when any of its logical pages is; at most every side.
        colour_pages = min(pages, colour_pages)
    if monochrome:
        colour_pages, colour_known = 0, True
    per_copy = -(-pages // 2) if effective_duplex else pages
    return JobCount(facts.format, pages, per_copy * effective_copies, colour_pages, colour_known,
                    facts.paper_size, size, effective_copies, effective_duplex, facts.pages, error)
