import pytest

from agent.pagecount import count_job, pcl5, pclxl
from tests import sample_documents as docs


def test_pcl5_counts_form_feeds_not_bytes_inside_raster_rows(tmp_path):
    facts = pcl5.count(str(docs.pcl5(tmp_path / "doc.pcl", 4)))
    assert (facts.format, facts.pages, facts.paper_size) == ("pcl5", 4, "A4")


def test_pcl5_reset_at_both_ends_does_not_add_pages(tmp_path):
    assert pcl5.count(str(docs.pcl5(tmp_path / "doc.pcl", 1, pjl=False))).pages == 1


def test_pcl5_content_ejected_by_reset_without_form_feed_is_a_page(tmp_path):
    path = tmp_path / "doc.pcl"
    path.write_bytes(b"\x1bEHello\x0cWorld\x1bE")
    assert pcl5.count(str(path)).pages == 2


def test_pcl5_bare_form_feed_feeds_a_blank_sheet(tmp_path):
    assert pcl5.count(str(docs.pcl5(tmp_path / "doc.pcl", 2, trailing_blank_ff=True))).pages == 3


def test_pcl5_copies_and_duplex_in_the_data(tmp_path):
    path = docs.pcl5(tmp_path / "doc.pcl", 3, copies=2, duplex=True)
    facts = pcl5.count(str(path))
    assert (facts.data_copies, facts.data_duplex) == (2, True)
    job = count_job(str(path))
    assert (job.pages, job.copies, job.duplex, job.sheets) == (3, 2, True, 4)


@pytest.mark.parametrize("little_endian", [True, False])
def test_pclxl_counts_end_page_operators_not_0x44_bytes_in_data(tmp_path, little_endian):
    path = docs.pclxl(tmp_path / "doc.pxl", 3, colour_pages=(0,), little_endian=little_endian)
    facts = pclxl.count(str(path))
    assert (facts.format, facts.pages, facts.colour_pages, facts.paper_size) == ("pclxl", 3, 1, "A4")


def test_pclxl_page_copies_attribute_is_used_once(tmp_path):
    path = docs.pclxl(tmp_path / "doc.pxl", 2, copies=3, duplex=True)
    job = count_job(str(path), copies=1)
    assert (job.format, job.pages, job.copies, job.duplex, job.sheets) == ("pclxl", 2, 3, True, 3)


def test_pcl5_without_colour_commands_is_known_grey_and_with_them_is_not_told(tmp_path):
    mono = pcl5.count(str(docs.pcl5(tmp_path / "m.pcl", 2)))
    assert (mono.colour_pages, mono.colour_known) == (0, True)
    path = tmp_path / "c.pcl"
    path.write_bytes(b"\x1bE\x1b*r3U\x1b*v6W" + bytes([0, 3, 8, 8, 8, 8]) + b"Colour\x0c\x1bE")
    colour = pcl5.count(str(path))
    assert (colour.pages, colour.colour_pages, colour.colour_known) == (1, 0, False)
