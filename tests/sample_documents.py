"""Small real documents in every format the agent counts, built byte by byte for the tests.

The raster headers follow PWG 5102.4 (big-endian 1796-byte page headers after ``RaS2``)
and Apple's URF layout; PCL and PCL XL are written as a driver would send them.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

A4_PT = (595, 842)
LETTER_PT = (612, 792)


def pdf(path: Path, pages: int, *, colour_pages: tuple[int, ...] = (), size=A4_PT) -> Path:
    """A PDF of ``pages`` pages, each drawing a rectangle: red on ``colour_pages``, grey elsewhere."""
    writer = PdfWriter()
    for index in range(pages):
        page = writer.add_blank_page(*size)
        colour = b"1 0 0 rg" if index in colour_pages else b"0.5 0.5 0.5 rg"
        stream = DecodedStreamObject()
        stream.set_data(colour + b" 72 72 200 100 re f BT /F1 12 Tf 72 700 Td (Page) Tj ET")
        page[NameObject("/Contents")] = writer._add_object(stream)
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def postscript(path: Path, pages: int, *, dsc_pages: int | str | None = None,
               page_comments: bool = True, copies: int | None = None,
               colour_pages: tuple[int, ...] = ()) -> Path:
    """A PostScript program printing ``pages`` pages of text (a red box on ``colour_pages``,
    0-based); DSC header as asked."""
    lines = ["%!PS-Adobe-3.0"]
    if dsc_pages is not None:
        lines.append(f"%%Pages: {dsc_pages}")
    lines += ["%%DocumentMedia: A4 595 842 0 () ()", "%%EndComments",
              "%%BeginProlog", "/showpage { systemdict /showpage get exec } bind def", "%%EndProlog"]
    if copies:
        lines.append(f"<< /NumCopies {copies} >> setpagedevice")
    for number in range(1, pages + 1):
        if page_comments:
            lines.append(f"%%Page: {number} {number}")
        if number - 1 in colour_pages:
            lines.append("gsave 1 0 0 setrgbcolor 72 72 200 100 rectfill grestore")
        lines += ["/Helvetica findfont 24 scalefont setfont",
                  f"72 700 moveto (Page {number} % not a comment) show", "showpage"]
    lines.append("%%Trailer")
    if dsc_pages == "(atend)":
        lines.append(f"%%Pages: {pages}")
    lines.append("%%EOF")
    path.write_text("\n".join(lines) + "\n")
    return path


def _packbits_line(width: int, unit: int, pixel: bytes, literal: bytes) -> bytes:
    """One line: ``literal`` pixels (multiple of unit) then ``pixel`` repeated to fill ``width``."""
    out = bytearray()
    literal_pixels = len(literal) // unit
    offset = 0
    while offset < literal_pixels:
        run = min(128, literal_pixels - offset)
        out.append(257 - run if run > 1 else 0)
        out += literal[offset * unit:(offset + run) * unit]
        offset += run
    remaining = width - literal_pixels
    while remaining > 0:
        run = min(128, remaining)
        out.append(run - 1)
        out += pixel
        remaining -= run
    return bytes(out)


def _raster_page(width: int, height: int, unit: int, white: bytes, seed: int) -> bytes:
    """A page whose first line has literal bytes (some look like headers and operators) and
    whose other lines repeat white."""
    literal = (b"RaS2\x0c\x44UNIRAST" + os.urandom(64) + bytes([seed % 256]) * 16)
    literal = literal[: (len(literal) // unit) * unit][: width * unit]
    data = bytearray([0]) + _packbits_line(width, unit, white, literal)
    remaining = height - 1
    while remaining > 0:
        group = min(256, remaining)
        data.append(group - 1)
        data += _packbits_line(width, unit, white, b"")
        remaining -= group
    return bytes(data)


def pwg_header(*, width: int, height: int, colour: bool, duplex: bool = False,
               dpi: int = 100, page_size_pt=A4_PT, size_name: str = "iso_a4_210x297mm") -> bytes:
    header = bytearray(1796)
    header[0:6] = b"PwgRas"
    struct.pack_into(">I", header, 272, int(duplex))
    struct.pack_into(">II", header, 276, dpi, dpi)
    struct.pack_into(">I", header, 340, 1)
    struct.pack_into(">II", header, 352, *page_size_pt)
    bits = 24 if colour else 8
    struct.pack_into(">II", header, 372, width, height)
    struct.pack_into(">IIII", header, 384, 8, bits, width * bits // 8, 0)
    struct.pack_into(">I", header, 400, 19 if colour else 18)
    struct.pack_into(">I", header, 420, 3 if colour else 1)
    name = size_name.encode()
    header[1732:1732 + len(name)] = name
    return bytes(header)


def pwg_raster(path: Path, colour_flags: list[bool], *, duplex: bool = False, dpi: int = 100) -> Path:
    """PWG raster with one page per flag (True = sRGB page, False = sGray page), A4 at ``dpi``."""
    width, height = 827 * dpi // 100, 1169 * dpi // 100
    out = bytearray(b"RaS2")
    for index, colour in enumerate(colour_flags):
        unit = 3 if colour else 1
        out += pwg_header(width=width, height=height, colour=colour, duplex=duplex, dpi=dpi)
        out += _raster_page(width, height, unit, b"\xff" * unit, index)
    path.write_bytes(bytes(out))
    return path


def urf(path: Path, colour_flags: list[bool], *, duplex: bool = False, dpi: int = 100) -> Path:
    """Apple raster: A4 pages, sRGB (24 bpp) or sGray (8 bpp), lines ending in 0x80 fills."""
    width, height = 827 * dpi // 100, 1169 * dpi // 100
    out = bytearray(b"UNIRAST\x00" + struct.pack(">I", len(colour_flags)))
    for index, colour in enumerate(colour_flags):
        unit = 3 if colour else 1
        header = bytearray(32)
        header[0] = unit * 8
        header[1] = 1 if colour else 0
        header[2] = 3 if duplex else 1
        header[3] = 4
        struct.pack_into(">III", header, 12, width, height, dpi)
        out += header
        literal = os.urandom(10 * unit)
        out += bytes([0, 256 - 9]) + literal + b"\x80"  # first line: 10 literal pixels, rest white
        remaining = height - 1
        while remaining > 0:
            group = min(256, remaining)
            out += bytes([group - 1, 0x80])
            remaining -= group
    path.write_bytes(bytes(out))
    return path


def pcl5(path: Path, pages: int, *, pjl: bool = True, copies: int | None = None,
         duplex: bool = False, trailing_blank_ff: bool = False) -> Path:
    """PCL 5 as a driver writes it: reset, setup, per page text and a raster image with a
    0x0C byte in its data, a form feed; reset and UEL at the end."""
    out = bytearray()
    if pjl:
        out += b"\x1b%-12345X@PJL JOB NAME=\"test\"\r\n@PJL ENTER LANGUAGE=PCL\r\n"
    out += b"\x1bE\x1b&l26A"
    if copies:
        out += b"\x1b&l%dX" % copies
    if duplex:
        out += b"\x1b&l1S"
    for number in range(1, pages + 1):
        out += b"\x1b&a0h0V" + b"Page %d\r\n" % number
        row = b"\x0c\x1bE\x0c\xff"
        out += b"\x1b*t300R\x1b*r1A\x1b*b%dW" % len(row) + row + b"\x1b*rB"
        out += b"\x1b(s0p10h12v0s0b3T"
        out += b"\x0c"
    if trailing_blank_ff:
        out += b"\x0c"
    out += b"\x1bE"
    if pjl:
        out += b"\x1b%-12345X@PJL EOJ\r\n\x1b%-12345X"
    path.write_bytes(bytes(out))
    return path


def pclxl(path: Path, pages: int, *, colour_pages: tuple[int, ...] = (), copies: int | None = None,
          little_endian: bool = True, duplex: bool = False) -> Path:
    """PCL XL (protocol 2.0) with PJL wrapper; each page has embedded image data full of 0x44."""
    order = "<" if little_endian else ">"
    binding = b")" if little_endian else b"("
    out = bytearray(b"\x1b%-12345X@PJL ENTER LANGUAGE=PCLXL\r\n")
    out += binding + b" HP-PCL XL;2;0;Comment PageLedger test\n"
    out += b"\xd1" + struct.pack(order + "HH", 600, 600) + b"\xf8\x89"  # UnitsPerMeasure
    out += b"\xc0\x00\xf8\x86"  # Measure eInch
    out += b"\x41"  # BeginSession
    out += b"\xc0\x00\xf8\x88\x48"  # OpenDataSource
    for index in range(pages):
        out += b"\xc0\x00\xf8\x28"  # Orientation portrait
        out += b"\xc0\x02\xf8\x25"  # MediaSize A4
        if duplex:
            out += b"\xc0\x00\xf8\x35"  # DuplexPageMode
        out += b"\x43"  # BeginPage
        space = 2 if index in colour_pages else 1
        out += b"\xc0" + bytes([space]) + b"\xf8\x03\x6a"  # SetColorSpace
        image = b"\x44" * 40 + b"\x43\x42\x1b"
        out += b"\xfa" + struct.pack(order + "I", len(image)) + image  # embedded data
        out += b"\xc8\xc1" + struct.pack(order + "H", 4) + b"D\x44DD\xf8\xa8"  # a ubyte array attr
        if copies:
            out += b"\xc1" + struct.pack(order + "H", copies) + b"\xf8\x32"
        out += b"\x44"  # EndPage
    out += b"\x49\x42"  # CloseDataSource, EndSession
    out += b"\x1b%-12345X@PJL EOJ\r\n\x1b%-12345X"
    path.write_bytes(bytes(out))
    return path


def text(path: Path, lines: int, *, form_feeds_every: int | None = None) -> Path:
    body = []
    for number in range(1, lines + 1):
        body.append(f"line {number}")
        if form_feeds_every and number % form_feeds_every == 0 and number != lines:
            body.append("\f")
    path.write_text("\n".join(body).replace("\n\f\n", "\n\f") + "\n")
    return path


def _png_up(rows: list[bytes]) -> bytes:
    """PNG "Up" prediction (filter type 2) as PDF writers apply it to cross-reference streams."""
    out, previous = bytearray(), bytes(len(rows[0]))
    for row in rows:
        out += b"\x02" + bytes((a - b) & 0xFF for a, b in zip(row, previous))
        previous = row
    return bytes(out)


def pdf_with_object_streams(path: Path, pages: int, size=LETTER_PT) -> Path:
    """A PDF 1.5 whose catalog, page tree and pages sit in a compressed object stream, found
    through a Flate-compressed cross-reference stream with a PNG predictor (what Acrobat and
    qpdf write), and whose media box is inherited from the page tree."""
    import zlib

    page_numbers = list(range(3, 3 + pages))
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
               2: (b"<< /Type /Pages /MediaBox [0 0 %d %d] /Count %d /Kids [" % (size[0], size[1], pages)
                   + b" ".join(b"%d 0 R" % n for n in page_numbers) + b"] >>")}
    for n in page_numbers:
        objects[n] = b"<< /Type /Page /Parent 2 0 R /Resources << >> >>"
    header, body = [], bytearray()
    for number, text in objects.items():
        header.append(b"%d %d" % (number, len(body)))
        body += text + b"\n"
    first = b" ".join(header) + b"\n"
    objstm_number = 3 + pages
    compressed = zlib.compress(first + bytes(body))
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    objstm_offset = len(out)
    out += (b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
            % (objstm_number, len(objects), len(first), len(compressed)) + compressed + b"\nendstream\nendobj\n")
    xref_number = objstm_number + 1
    xref_offset = len(out)
    rows = [bytes([0, 0, 0, 0])]  # object 0: free
    for index, number in enumerate(sorted(objects)):
        rows.append(bytes([2]) + objstm_number.to_bytes(2, "big") + bytes([index]))
    rows.append(bytes([1]) + objstm_offset.to_bytes(2, "big") + b"\x00")
    rows.append(bytes([1]) + xref_offset.to_bytes(2, "big") + b"\x00")
    xref_data = zlib.compress(_png_up(rows))
    out += (b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 2 1] /Root 1 0 R /Filter /FlateDecode "
            b"/DecodeParms << /Predictor 12 /Columns 4 >> /Length %d >>\nstream\n"
            % (xref_number, xref_number + 1, len(xref_data)) + xref_data + b"\nendstream\nendobj\n")
    out += b"startxref\n%d\n%%%%EOF\n" % xref_offset
    path.write_bytes(bytes(out))
    return path
