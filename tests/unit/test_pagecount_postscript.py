from agent.pagecount import count_job
from agent.pagecount.postscript import count
from tests import sample_documents as docs


def test_dsc_pages_comment_and_page_markers_agree(tmp_path):
    facts = count(str(docs.postscript(tmp_path / "a.ps", 3, dsc_pages=3)))
    assert (facts.format, facts.pages, facts.paper_size) == ("postscript", 3, "A4")


def test_pages_atend_are_read_from_the_trailer(tmp_path):
    assert count(str(docs.postscript(tmp_path / "a.ps", 4, dsc_pages="(atend)"))).pages == 4


def test_a_lying_pages_header_loses_to_the_page_markers(tmp_path):
    assert count(str(docs.postscript(tmp_path / "a.ps", 5, dsc_pages=1))).pages == 5


def test_without_dsc_showpage_operators_are_counted_but_not_their_definition(tmp_path):
    facts = count(str(docs.postscript(tmp_path / "a.ps", 6, page_comments=False)))
    assert facts.pages == 6


def test_embedded_eps_page_markers_are_not_pages_of_the_job(tmp_path):
    path = tmp_path / "a.ps"
    path.write_text("%!PS-Adobe-3.0\n%%Pages: 1\n%%Page: 1 1\n%%BeginDocument: logo.eps\n"
                    "%!PS-Adobe-3.0 EPSF-3.0\n%%Pages: 1\n%%Page: 1 1\n%%EndDocument\nshowpage\n%%EOF\n")
    assert count(str(path)).pages == 1


def test_copies_asked_in_the_data_are_used_once_when_the_job_asks_none(tmp_path):
    path = docs.postscript(tmp_path / "a.ps", 2, dsc_pages=2, copies=3)
    assert count(str(path)).data_copies == 3
    job = count_job(str(path), copies=1)
    assert (job.pages, job.copies, job.sheets) == (2, 3, 6)
    # The command line's copies win and are not multiplied by the data's: no n² copies.
    job = count_job(str(path), copies=2)
    assert (job.copies, job.sheets) == (2, 4)


def test_windows_line_endings_are_read_the_same(tmp_path):
    source = docs.postscript(tmp_path / "a.ps", 4, dsc_pages=4)
    crlf = tmp_path / "crlf.ps"
    crlf.write_bytes(source.read_bytes().replace(b"\n", b"\r\n"))
    facts = count(str(crlf))
    assert (facts.pages, facts.paper_size) == (4, "A4")


def test_an_empty_file_detected_as_postscript_has_no_pages(tmp_path):
    path = tmp_path / "empty.ps"
    path.write_bytes(b"")
    assert count(str(path)).pages == 0


def test_a_program_naming_no_colour_operator_is_known_grey_and_one_that_does_is_told_by_the_interpreter(tmp_path):
    from agent.pagecount.postscript import count_structure

    grey = count(str(docs.postscript(tmp_path / "g.ps", 2, dsc_pages=2)))
    assert (grey.colour_pages, grey.colour_known) == (0, True)
    coloured_path = str(docs.postscript(tmp_path / "c.ps", 2, dsc_pages=2, colour_pages=(1,)))
    assert (count_structure(coloured_path).colour_pages, count_structure(coloured_path).colour_known) == (0, False)
    coloured = count(coloured_path)
    assert (coloured.colour_pages, coloured.colour_known, coloured.colour_page_numbers) == (1, True, {2})
