"""Counting PWG raster (PWG 5102.4, ``image/pwg-raster``) pages from their 1796-byte headers.

Each page header tells its colour space, size in points and media name, duplex, and the
geometry needed to walk its compressed lines to the next header. A page is colour when its
colour space is a colour one and, for 8-bit RGB pages, when one of its pixels is not grey
(CUPS renders black-and-white documents in sRGB for colour printers).
"""
from __future__ import annotations

import struct

from agent.pagecount.facts import DocumentFacts, mapped
from agent.pagecount.paper import paper_from_media_name, paper_from_points
from agent.pagecount.raster_lines import TruncatedRaster, skip_page

SYNC = b"RaS2"
HEADER_SIZE = 1796
# cups_cspace_t values that carry one grey channel: W, K, WHITE, GOLD, SILVER, SW.
GREY_COLOUR_SPACES = {0, 3, 12, 13, 14, 18}
# RGB, sRGB, AdobeRGB: with 8 bits a colour, their pixels are checked for non-grey ones.
RGB_COLOUR_SPACES = {1, 19, 20}


def parse_header(header: bytes) -> dict:
    """The fields of a page header a counter needs (big-endian 32-bit integers)."""
    (duplex,) = struct.unpack_from(">I", header, 272)
    (copies,) = struct.unpack_from(">I", header, 340)
    page_w, page_h = struct.unpack_from(">II", header, 352)
    width, height = struct.unpack_from(">II", header, 372)
    bits_per_colour, bits_per_pixel, bytes_per_line = struct.unpack_from(">III", header, 384)
    (colour_space,) = struct.unpack_from(">I", header, 400)
    (num_colours,) = struct.unpack_from(">I", header, 420)
    size_name = header[1732:1796].split(b"\x00", 1)[0].decode("ascii", "replace")
    return {
        "duplex": bool(duplex), "copies": copies, "page_size_pt": (page_w, page_h),
        "width": width, "height": height, "bits_per_colour": bits_per_colour,
        "bits_per_pixel": bits_per_pixel, "bytes_per_line": bytes_per_line,
        "colour_space": colour_space, "num_colours": num_colours, "page_size_name": size_name,
    }


def count(path: str) -> DocumentFacts:
    pages = colour_pages = 0
    paper = "unknown"
    data_duplex = None
    data_copies = None
    with mapped(path) as data:
        if data is None:  # empty file
            return DocumentFacts("pwg-raster", 0, 0, True)
        pos = len(SYNC)
        while pos + HEADER_SIZE <= len(data):
            header = parse_header(data[pos:pos + HEADER_SIZE])
            pos += HEADER_SIZE
            pages += 1
            rgb = header["colour_space"] in RGB_COLOUR_SPACES and header["bits_per_pixel"] == 24
            colour_space_colour = header["colour_space"] not in GREY_COLOUR_SPACES
            if pages == 1:
                paper = paper_from_media_name(header["page_size_name"])
                if paper == "unknown":
                    paper = paper_from_points(*header["page_size_pt"])
                data_duplex = header["duplex"]
                data_copies = header["copies"] if header["copies"] > 1 else None
            unit = max(1, header["bits_per_pixel"] // 8)
            width_units = header["bytes_per_line"] // unit
            try:
                pos, pixel_colour = skip_page(data, pos, width_units, header["height"], unit,
                                              apple=False, rgb_pixels=rgb)
            except TruncatedRaster:
                colour_pages += colour_space_colour
                break
            colour_pages += pixel_colour if rgb else colour_space_colour
    return DocumentFacts("pwg-raster", pages, colour_pages, True, paper, data_copies, data_duplex)
