"""Counting PWG raster (PWG 5102.4, ``image/pwg-raster``) pages from their 1796-byte headers.

CUPS raster v2 (compressed like PWG) and v3 (uncompressed), in either byte order (``RaS2``/
``2SaR``, ``RaS3``/``3SaR``: Ghostscript's ``cups`` device writes little-endian v3) have the
same header and are read here too; they are reported as ``pwg-raster``, the one raster name
every server takes (PWG raster is CUPS raster v2 restricted).

Each page header tells its colour space, size in points and media name, duplex, and the
geometry needed to walk its compressed lines to the next header. A page is colour when its
colour space is a colour one and, for 8-bit RGB pages, when one of its pixels is not grey
(CUPS renders black-and-white documents in sRGB for colour printers).
"""
from __future__ import annotations

import struct

from agent.pagecount.facts import DocumentFacts, job_paper, mapped
from agent.pagecount.paper import paper_from_media_name, paper_from_points
from agent.pagecount.raster_lines import TruncatedRaster, _grey_rgb, skip_page

SYNC = b"RaS2"
HEADER_SIZE = 1796
# cups_cspace_t values that carry one grey channel: W, K, WHITE, GOLD, SILVER, SW.
GREY_COLOUR_SPACES = {0, 3, 12, 13, 14, 18}
# RGB, sRGB, AdobeRGB: with 8 bits a colour, their pixels are checked for non-grey ones.
RGB_COLOUR_SPACES = {1, 19, 20}


def parse_header(header: bytes, order: str = ">") -> dict:
    """The fields of a page header a counter needs (32-bit integers, big-endian unless ``order``
    is "<")."""
    (duplex,) = struct.unpack_from(order + "I", header, 272)
    (copies,) = struct.unpack_from(order + "I", header, 340)
    page_w, page_h = struct.unpack_from(order + "II", header, 352)
    width, height = struct.unpack_from(order + "II", header, 372)
    bits_per_colour, bits_per_pixel, bytes_per_line = struct.unpack_from(order + "III", header, 384)
    (colour_space,) = struct.unpack_from(order + "I", header, 400)
    (num_colours,) = struct.unpack_from(order + "I", header, 420)
    size_name = header[1732:1796].split(b"\x00", 1)[0].decode("ascii", "replace")
    return {
        "duplex": bool(duplex), "copies": copies, "page_size_pt": (page_w, page_h),
        "width": width, "height": height, "bits_per_colour": bits_per_colour,
        "bits_per_pixel": bits_per_pixel, "bytes_per_line": bytes_per_line,
        "colour_space": colour_space, "num_colours": num_colours, "page_size_name": size_name,
    }


def count(path: str) -> DocumentFacts:
    pages = colour_pages = 0
    page_papers: list[str] = []
    data_duplex = None
    data_copies = None
    with mapped(path) as data:
        if data is None:  # empty file
            return DocumentFacts("pwg-raster", 0, 0, True)
        sync = bytes(data[:4])
        order = "<" if sync[:1].isdigit() else ">"
        compressed = sync in (b"RaS2", b"2SaR")
        pos = len(SYNC)
        while pos + HEADER_SIZE <= len(data):
            header = parse_header(data[pos:pos + HEADER_SIZE], order)
            pos += HEADER_SIZE
            pages += 1
            rgb = header["colour_space"] in RGB_COLOUR_SPACES and header["bits_per_pixel"] == 24
            colour_space_colour = header["colour_space"] not in GREY_COLOUR_SPACES
            page_paper = paper_from_media_name(header["page_size_name"])
            if page_paper == "unknown":
                page_paper = paper_from_points(*header["page_size_pt"])
            page_papers.append(page_paper)
            if pages == 1:
                data_duplex = header["duplex"]
                data_copies = header["copies"] if header["copies"] > 1 else None
            if not compressed:  # v3: bytes_per_line x height bytes, as they are
                size = header["bytes_per_line"] * header["height"]
                if pos + size > len(data):
                    colour_pages += colour_space_colour
                    break
                pixel_colour = rgb and not _grey_rgb(data[pos:pos + size])
                pos += size
                colour_pages += pixel_colour if rgb else colour_space_colour
                continue
            unit = max(1, header["bits_per_pixel"] // 8)
            width_units = header["bytes_per_line"] // unit
            try:
                pos, pixel_colour = skip_page(data, pos, width_units, header["height"], unit,
                                              apple=False, rgb_pixels=rgb)
            except TruncatedRaster:
                colour_pages += colour_space_colour
                break
            colour_pages += pixel_colour if rgb else colour_space_colour
    return DocumentFacts("pwg-raster", pages, colour_pages, True, job_paper(page_papers), data_copies, data_duplex,
                         page_papers)
