import pytest

from agent.pagecount import count_job, pages_in_ranges
from agent.pagecount.detect import detect_format
from agent.pagecount.paper import paper_from_media_name
from tests import sample_documents as docs


def test_copies_multiply_sheets_once_and_pages_stay_per_copy(tmp_path):
    job = count_job(str(docs.pdf(tmp_path / "d.pdf", 4)), copies=3)
    assert (job.pages, job.copies, job.sheets) == (4, 3, 12)


def test_duplex_halves_sheets_rounding_up_per_copy(tmp_path):
    job = count_job(str(docs.pdf(tmp_path / "d.pdf", 5)), copies=3, duplex=True)
    # 5 impressions -> 3 sheets per copy -> 9 sheets, not ceil(15 / 2) = 8
    assert (job.pages, job.sheets) == (5, 9)


def test_number_up_makes_impressions_from_logical_pages(tmp_path):
    job = count_job(str(docs.pdf(tmp_path / "d.pdf", 5, colour_pages=(0, 1, 2))), number_up=2)
    assert (job.document_pages, job.pages, job.sheets) == (5, 3, 3)
    assert job.colour_pages <= job.pages


def test_number_up_already_imposed_by_cups_filters_is_not_applied_again(tmp_path):
    job = count_job(str(docs.pdf(tmp_path / "d.pdf", 2)), number_up=2, imposed=True, copies=2)
    assert (job.pages, job.sheets) == (2, 4)


def test_monochrome_print_colour_mode_makes_no_colour_pages(tmp_path):
    job = count_job(str(docs.pdf(tmp_path / "d.pdf", 2, colour_pages=(0, 1))), monochrome=True)
    assert (job.colour_pages, job.colour_known) == (0, True)


def test_unknown_format_reports_bytes_and_no_page_count(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 10)
    job = count_job(str(path), copies=2)
    assert (job.format, job.pages, job.sheets, job.bytes) == ("unknown", None, None, 2560)


def test_bad_copies_are_refused(tmp_path):
    with pytest.raises(ValueError):
        count_job(str(docs.pdf(tmp_path / "d.pdf", 1)), copies=0)


@pytest.mark.parametrize("head,expected", [
    (b"%PDF-1.7\n", "pdf"),
    (b"%!PS-Adobe-3.0\n", "postscript"),
    (b"\x04%!PS\n", "postscript"),
    (b"\x1b%-12345X@PJL JOB\r\n@PJL ENTER LANGUAGE=POSTSCRIPT\r\n%!PS\n", "postscript"),
    (b"\x1b%-12345X@PJL ENTER LANGUAGE=PCLXL\r\n) HP-PCL XL;2;0\n", "pclxl"),
    (b"\x1bE\x1b&l26A", "pcl5"),
    (b"RaS2", "pwg-raster"),
    (b"UNIRAST\x00\x00\x00\x00\x01", "urf"),
    ("Grüße\nhello\n".encode(), "text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "unknown"),
    (b"", "unknown"),
])
def test_format_is_detected_by_magic_bytes(head, expected):
    assert detect_format(head) == expected


@pytest.mark.parametrize("media,paper", [
    ("iso_a4_210x297mm", "A4"), ("na_letter_8.5x11in", "Letter"), ("A3", "A3"),
    ("Letter", "Letter"), ("iso_a5_148x210mm", "A5"), ("custom_99x99mm", "unknown"), ("", "unknown"),
])
def test_media_names_map_to_paper_sizes(media, paper):
    assert paper_from_media_name(media) == paper


@pytest.mark.parametrize("ranges,expected", [("", 10), ("1-3", 3), ("2-3,5", 3), ("8-", 3), ("1-3,2-4", 4),
                                              ("9-20", 2), ("11-12", 0)])
def test_page_ranges_select_pages_of_the_document(ranges, expected):
    assert pages_in_ranges(10, ranges) == expected


def test_page_ranges_apply_before_n_up_on_raw_data_only(tmp_path):
    path = str(docs.pdf(tmp_path / "d.pdf", 10))
    assert count_job(path, page_ranges="1-5", number_up=2).pages == 3
    assert count_job(path, page_ranges="1-5", number_up=2, imposed=True).pages == 10


def test_bad_page_ranges_are_refused():
    with pytest.raises(ValueError, match="bad page-ranges"):
        pages_in_ranges(3, "one-two")
