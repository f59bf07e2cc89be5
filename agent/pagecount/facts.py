"""What a page counter learns from one document, before copies, duplex and N-up are applied."""
from __future__ import annotations

import mmap
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass
class DocumentFacts:
    """Facts read from the bytes of one document.

    ``pages`` is the number of page images in the data (None when the format is unknown:
    never a silent 0). ``colour_known`` says whether ``colour_pages`` was read from the data;
    when it is False, ``colour_pages`` is 0 and means "not told". ``data_copies`` and
    ``data_duplex`` are what the page description language itself asks for (PCL ``ESC &l#X``,
    PostScript ``/NumCopies``...), None when it says nothing.
    """

    format: str
    pages: int | None
    colour_pages: int = 0
    colour_known: bool = False
    paper_size: str = "unknown"
    data_copies: int | None = None
    data_duplex: bool | None = None


@contextmanager
def mapped(path: str) -> Iterator[mmap.mmap | None]:
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
