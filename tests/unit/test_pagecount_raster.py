import struct

from agent.pagecount import count_job
from agent.pagecount import pwg_raster, urf
from tests import sample_documents as docs


def test_pwg_raster_pages_colour_pages_duplex_and_paper(tmp_path):
    path = docs.pwg_raster(tmp_path / "doc.pwg", [False, True, False, True, True], duplex=True)
    facts = pwg_raster.count(str(path))
    assert (facts.format, facts.pages, facts.colour_pages, facts.colour_known) == ("pwg-raster", 5, 3, True)
    assert facts.paper_size == "A4"
    assert facts.data_duplex is True


def test_pwg_raster_header_fields_sit_where_pwg_5102_4_puts_them():
    header = docs.pwg_header(width=850, height=1100, colour=True, page_size_pt=(612, 792),
                             size_name="na_letter_8.5x11in")
    fields = pwg_raster.parse_header(header)
    assert fields["width"] == 850 and fields["height"] == 1100 and fields["bits_per_pixel"] == 24
    assert fields["colour_space"] == 19 and fields["page_size_name"] == "na_letter_8.5x11in"
    assert struct.unpack_from(">I", header, 392)[0] == 850 * 3


def test_truncated_pwg_raster_counts_the_pages_whose_header_arrived(tmp_path):
    path = docs.pwg_raster(tmp_path / "doc.pwg", [False, False, False])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    assert pwg_raster.count(str(path)).pages == 3


def test_urf_pages_and_colour_from_its_page_headers(tmp_path):
    path = docs.urf(tmp_path / "doc.urf", [True, False, False, True])
    facts = urf.count(str(path))
    assert (facts.format, facts.pages, facts.colour_pages, facts.paper_size) == ("urf", 4, 2, "A4")


def test_urf_file_header_page_count_is_not_trusted(tmp_path):
    path = docs.urf(tmp_path / "doc.urf", [False, False, False])
    data = bytearray(path.read_bytes())
    struct.pack_into(">I", data, 8, 1)
    path.write_bytes(bytes(data))
    assert urf.count(str(path)).pages == 3


def test_raster_formats_are_told_by_magic_not_name(tmp_path):
    pwg = docs.pwg_raster(tmp_path / "looks-like.pdf", [True])
    job = count_job(str(pwg), copies=2)
    assert (job.format, job.pages, job.sheets, job.colour_pages) == ("pwg-raster", 1, 2, 1)


def _srgb_page(pixels: list[tuple[int, int, int]]) -> bytes:
    """A 2-line sRGB page, both lines the same ``pixels`` as one literal run."""
    header = docs.pwg_header(width=len(pixels), height=2, colour=True)
    return header + bytes([1, 257 - len(pixels)]) + b"".join(bytes(p) for p in pixels)


def test_an_srgb_page_holding_only_greys_is_not_colour_and_one_red_pixel_is(tmp_path):
    grey = [(v, v, v) for v in (0, 40, 128, 200, 255, 255, 17, 90, 3, 250)]
    red = grey[:4] + [(255, 0, 0)] + grey[5:]
    path = tmp_path / "p.pwg"
    path.write_bytes(b"RaS2" + _srgb_page(grey) + _srgb_page(red) + _srgb_page(grey))
    facts = pwg_raster.count(str(path))
    assert (facts.pages, facts.colour_pages) == (3, 1)
