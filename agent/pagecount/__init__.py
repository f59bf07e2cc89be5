"""Page counting: one module per page description language, chosen by the data's magic bytes.

``count_document`` reads what the data says; ``count_job`` applies a job's copies, duplex and
N-up to it exactly once. Two classic accounting bugs are avoided here on purpose: copies
are never multiplied twice (when the command line asks for copies the data's own copy count
is ignored, and the other way round), and logical pages are never taken for sheets.
"""
from __future__ import annotations

import importlib
import os
from collections import namedtuple

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


class JobCount(namedtuple("JobCount", "format pages sheets colour_pages colour_known paper_size bytes copies duplex "
                                     "document_pages error paper_counts pages_known unknown_reason",
                          defaults=("", {}, True, ""))):
    """A job's counts as the server wants them.

    ``pages`` are impressions per copy (after N-up), ``sheets`` the paper used by all copies,
    ``colour_pages`` colour impressions per copy. ``pages`` is None for an unknown format.
    ``paper_counts``: paper name -> (impressions, colour impressions) per copy; their sums are
    pages/colour_pages (the shared default {} is never mutated).
    """

    __slots__ = ()

    def as_json(self) -> dict:
        return {"format": self.format, "pages": self.pages, "sheets": self.sheets,
                "colour_pages": self.colour_pages, "paper_size": self.paper_size,
                "bytes": self.bytes, "colour_known": self.colour_known,
                "copies": self.copies, "duplex": self.duplex,
                "pages_known": self.pages_known, "unknown_reason": self.unknown_reason,
                "paper_counts": {name: {"pages": p, "colour_pages": c} for name, (p, c) in self.paper_counts.items()}}


# Seconds Ghostscript may take on one document before its answer is "unknown".
INTERPRETER_TIMEOUT = 20.0


def count_document(path: str, *, colour: bool = True, timeout: float = INTERPRETER_TIMEOUT) -> DocumentFacts:
    """Facts of the document at ``path``; format "unknown" (pages None) when it cannot tell.

    ``colour=False`` lets a counter skip colour work the job does not need (PDF, PostScript);
    ``timeout`` bounds the time Ghostscript may take (PDF, PostScript).
    """
    fmt = detect_format(read_head(path))
    module = COUNTERS.get(fmt)
    if module is None:
        return DocumentFacts("unknown", None)
    counter = importlib.import_module(module)
    if fmt in ("pdf", "postscript"):
        return counter.count(path, colour=colour, timeout=timeout)
    return counter.count(path)


def selected_pages(pages: int, page_ranges: str) -> list[int]:
    """The page numbers (1-based, in order) of pages 1..``pages`` that ``page-ranges`` selects."""
    if not page_ranges.strip():
        return list(range(1, pages + 1))
    selected: set[int] = set()
    for part in page_ranges.split(","):
        first, sep, last = part.strip().partition("-")
        try:
            low = int(first) if first else 1
            high = (int(last) if last else pages) if sep else low
        except ValueError:
            raise ValueError(f"bad page-ranges {page_ranges!r}") from None
        selected.update(range(max(1, low), min(pages, high) + 1))
    return sorted(selected)


def paper_counts(facts: DocumentFacts, page_ranges: str = "", number_up: int = 1,
                 monochrome: bool = False) -> dict[str, tuple[int, int]]:
    """Impressions and colour impressions per paper size, after page ranges and N-up.

    A sheet side of N-up pages takes the first one's paper and is colour when any of them is.
    When the counter did not say which pages are colour, its colour pages are put on the
    first pages (the count per size is then approximate, the total exact).
    """
    papers = facts.papers()
    numbers = selected_pages(len(papers), page_ranges)
    coloured = facts.colour_page_numbers
    if coloured is None:
        coloured = frozenset(range(1, min(facts.colour_pages, len(papers)) + 1))
    counts: dict[str, list[int]] = {}
    for start in range(0, len(numbers), number_up):
        side = numbers[start:start + number_up]
        entry = counts.setdefault(papers[side[0] - 1], [0, 0])
        entry[0] += 1
        entry[1] += (not monochrome) and any(n in coloured for n in side)
    return {name: (p, c) for name, (p, c) in counts.items()}


def pages_in_ranges(pages: int, page_ranges: str) -> int:
    """How many of pages 1..``pages`` an IPP ``page-ranges`` value ("1-3,7,10-") selects."""
    return len(selected_pages(pages, page_ranges))


def count_job(path: str, *, copies: int = 1, duplex: bool | None = None, number_up: int = 1,
              imposed: bool = False, monochrome: bool = False, page_ranges: str = "",
              timeout: float = INTERPRETER_TIMEOUT, device_colour: bool = True,
              device_duplex: bool = True) -> JobCount:
    """Count the job whose data is at ``path``.

    ``copies``/``duplex`` come from the job's options (CUPS argv); when the job does not ask
    (copies 1, duplex None) the document's own request is used, never both. ``imposed`` says
    the data already has N-up applied (CUPS filters did it), so ``number_up`` is not applied
    again, nor are ``page_ranges`` (applied to the document's pages otherwise; the colour
    count then keeps at most one colour page per selected page). ``monochrome`` (print-color-mode=monochrome) makes every impression grey.
    ``device_colour``/``device_duplex`` False (a printer that cannot print colour, or both sides)
    make every impression grey, or the job simplex, whatever the job or the document asks.
    """
    monochrome = monochrome or not device_colour
    if copies < 1:
        raise ValueError("copies must be at least 1")
    if number_up < 1:
        raise ValueError("number-up must be at least 1")
    size = os.path.getsize(path)
    error = ""
    try:
        facts = count_document(path, colour=not monochrome, timeout=timeout)
    except Exception as err:  # a damaged document must not stop the job from being accounted
        facts = DocumentFacts("unknown", None)
        error = f"{type(err).__name__}: {err}"
    effective_copies = copies if copies > 1 else (facts.data_copies or 1)
    effective_duplex = (duplex if duplex is not None else bool(facts.data_duplex)) and device_duplex
    colour_pages, colour_known = facts.colour_pages, facts.colour_known
    if facts.pages is None:
        return JobCount(facts.format, None, None, 0, False, facts.paper_size, size,
                        effective_copies, effective_duplex, None, error, {}, False,
                        facts.unknown_reason or error or "format not recognised")
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
    raw_layout = not imposed
    by_paper = paper_counts(facts, page_ranges if raw_layout else "", number_up if raw_layout else 1, monochrome)
    if sum(p for p, _ in by_paper.values()) != pages:  # a counter without pages listed: one size
        by_paper = {facts.paper_size: (pages, colour_pages)} if pages else {}
    else:  # the colour figure per size never exceeds the job's
        excess = sum(c for _, c in by_paper.values()) - colour_pages
        for name, (p, c) in list(by_paper.items()):
            cut = min(c, max(excess, 0))
            by_paper[name] = (p, c - cut)
            excess -= cut
    paper = facts.paper_size if len(by_paper) <= 1 else "mixed"
    if len(by_paper) == 1:
        paper = next(iter(by_paper))
    per_copy = -(-pages // 2) if effective_duplex else pages
    reason = facts.unknown_reason if (not facts.pages_known or not colour_known) else ""
    return JobCount(facts.format, pages, per_copy * effective_copies, colour_pages, colour_known,
                    paper, size, effective_copies, effective_duplex, facts.pages, error,
                    by_paper, facts.pages_known, reason)
