"""Counting Apple raster (URF, ``image/urf``, what AirPrint clients send) pages.

A file is ``UNIRAST\\0``, a big-endian page count, then per page a 32-byte header (bits per
pixel, colour space, duplex mode, quality, width, height, resolution) and its compressed
lines. The file header's page count is not trusted: pages are walked one by one.
"""
from __future__ import annotations

import struct

from agent.pagecount.facts import DocumentFacts, mapped
from agent.pagecount.paper import paper_from_mm
from agent.pagecount.raster_lines import TruncatedRaster, skip_page

MAGIC = b"UNIRAST\x00"
FILE_HEADER_SIZE = 12
PAGE_HEADER_SIZE = 32
# URF colour space codes: 0 sGray, 1 sRGB, 2 CIELab, 3 AdobeRGB, 4 Gray, 5 RGB, 6 CMYK.
GREY_COLOUR_SPACES = {0, 4}
RGB_COLOUR_SPACES = {1, 3, 5}  # checked pixel by pixel for non-grey ones when 8-bit


def parse_page_header(header: bytes) -> dict:
    bits_per_pixel, colour_space, duplex = header[0], header[1], header[2]
    width, height, dpi = struct.unpack_from(">III", header, 12)
    return {"bits_per_pixel": bits_per_pixel, "colour_space": colour_space,
            "duplex": duplex, "width": width, "height": height, "dpi": dpi}


def count(path: str) -> DocumentFacts:
    pages = colour_pages = 0
    paper = "unknown"
    data_duplex = None
    with mapped(path) as data:
        if data is None:  # empty file
            return DocumentFacts("urf", 0, 0, True)
        pos = FILE_HEADER_SIZE
        while pos + PAGE_HEADER_SIZE <= len(data):
            header = parse_page_header(data[pos:pos + PAGE_HEADER_SIZE])
            pos += PAGE_HEADER_SIZE
            pages += 1
            colour_space_colour = header["colour_space"] not in GREY_COLOUR_SPACES
            rgb = header["colour_space"] in RGB_COLOUR_SPACES and header["bits_per_pixel"] == 24
            if pages == 1:
                if header["dpi"]:
                    paper = paper_from_mm(header["width"] / header["dpi"] * 25.4,
                                          header["height"] / header["dpi"] * 25.4)
                # 1 simplex, 2 short-edge (tumble), 3 long-edge
                data_duplex = header["duplex"] in (2, 3)
            bits = header["bits_per_pixel"]
            if bits >= 8:
                unit, width_units = bits // 8, header["width"]
            else:  # 1-bit (Ghostscript's appleraster): runs count bytes of packed pixels
                unit, width_units = 1, (header["width"] * bits + 7) // 8
            try:
                pos, pixel_colour = skip_page(data, pos, width_units, header["height"], unit,
                                              apple=True, rgb_pixels=rgb)
            except TruncatedRaster:
                colour_pages += colour_space_colour
                break
            colour_pages += pixel_colour if rgb else colour_space_colour
    return DocumentFacts("urf", pages, colour_pages, True, paper, None, data_duplex)
