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


def _grey_rgb(pixels: bytes) -> bool:
    """Whether every 8-bit RGB pixel in ``pixels`` has R == G == B (slicing runs in C)."""
    return pixels[0::3] == pixels[1::3] == pixels[2::3]


def skip_page(data, pos: int, width: int, height: int, unit: int, apple: bool,
              rgb_pixels: bool = False) -> tuple[int, bool]:
    """Position just after the page whose data starts at ``pos``, and whether it has colour.

    With ``rgb_pixels`` (8-bit RGB pages) the pixels are looked at until one is not grey, so
    a page in an RGB colour space that only holds greys (text rendered in sRGB) is not counted
    as colour; otherwise the colour answer is False and the caller goes by the colour space.
    """
    end = len(data)
    colour = False
    check = rgb_pixels and unit == 3
    y = 0
    try:
        while y < height:
            y += data[pos] + 1
            pos += 1
            x = 0
            while x < width:
                code = data[pos]
                pos += 1
                if code < 128:
                    x += code + 1
                    if check and not _grey_rgb(data[pos:pos + 3]):
                        colour, check = True, False
                    pos += unit
                elif code == 128 and apple:
                    x = width
                else:
                    run = 257 - code
                    x += run
                    if check and not _grey_rgb(data[pos:pos + run * 3]):
                        colour, check = True, False
                    pos += run * unit
    except IndexError:
        # Reading past the end (an mmap raises IndexError): the data stops inside the page.
        raise TruncatedRaster(f"page data ends at line {y} of {height}") from None
    if pos > end:
        raise TruncatedRaster("last line ends beyond the data")
    return pos, colour
