"""Walking the compressed lines of PWG and Apple (URF) raster pages without decoding pixels.

Both formats (PWG 5102.4 section 4.3.1.2, and Apple's URF which copies it) encode a page as
groups of identical lines: one byte "repeat this line N+1 times", then runs until the line's
width is filled: a byte 0..127 repeats the next pixel N+1 times, a byte 129..255 is followed
by 257-N literal pixels. In URF the byte 128 fills the rest of the line with white.
Nothing marks where a page's data ends, so a counter has to walk every run to find the next
page header; it skips the pixel bytes without reading them.
"""
from __future__ import annotations


class TruncatedRaster(ValueError):
    """The data ended inside a page."""


def skip_page(data, pos: int, width: int, height: int, unit: int, apple: bool) -> int:
    """Position just after the page whose data starts at ``pos``."""
    end = len(data)
    y = 0
    while y < height:
        if pos >= end:
            raise TruncatedRaster(f"page data ends at line {y} of {height}")
        y += data[pos] + 1
        pos += 1
        x = 0
        while x < width:
            if pos >= end:
                raise TruncatedRaster(f"page data ends inside line {y}")
            code = data[pos]
            pos += 1
            if code < 128:
                x += code + 1
                pos += unit
            elif code == 128 and apple:
                x = width
            else:
                run = 257 - code
                x += run
                pos += run * unit
    if pos > end:
        raise TruncatedRaster("last line ends beyond the data")
    return pos
