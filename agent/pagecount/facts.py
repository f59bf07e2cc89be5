"""What a page counter learns from one document, before copies, duplex and N-up are applied."""
from __future__ import annotations

import mmap
from collections import namedtuple
from contextlib import contextmanager


class DocumentFacts(namedtuple("DocumentFacts", "format pages colour_pages colour_known paper_size data_copies "
                                               "data_duplex page_papers pages_known unknown_reason colour_page_numbers",
                               defaults=(0, False, "unknown", None, None, None, True, "", None))):
    """Facts read from the bytes of one document.

    ``pages`` is the number of page images in the data (None when the format is unknown:
    never a silent 0). ``colour_known`` says whether ``colour_pages`` was read from the data;
    when it is False, ``colour_pages`` is 0 and means "not told". ``data_copies`` and
    ``data_duplex`` are what the page description language itself asks for (PCL ``ESC &l#X``,
    PostScript ``/NumCopies``...), None when it says nothing. ``page_papers`` is each page's
    paper name, in order, when the counter knows it page by page (else every page is
    ``paper_size``). ``pages_known`` False means ``pages`` is the best figure found, not a sure
    count (a damaged file, an interpreter that failed or ran out of time), with the reason in
    ``unknown_reason``, which also says why colour is not known when it is not.
    ``colour_page_numbers`` are the colour pages (1-based), when told page by page.
    """

    __slots__ = ()

    def papers(self) -> list[str]:
        """One paper name per page."""
        if self.page_papers is not None and len(self.page_papers) == (self.pages or 0):
            return self.page_papers
        return [self.paper_size] * (self.pages or 0)


def job_paper(page_papers: list[str]) -> str:
    """The job's paper: the one size all its pages share, "mixed" when they differ."""
    sizes = set(page_papers)
    if not sizes:
        return "unknown"
    return sizes.pop() if len(sizes) == 1 else "mixed"


@contextmanager
def mapped(path: str):
    """The file's bytes, mapped read-only (a 400 MB job is never read into memory); None for
    an empty file, which mmap cannot map."""
    with open(path, "rb") as handle:
        try:
            data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            yield None
            return
        with data:
            yield data
