from agent.pagecount import count_job
from agent.pagecount.text import count
from tests import sample_documents as docs


def test_66_lines_a_page(tmp_path):
    assert count(str(docs.text(tmp_path / "a.txt", 66))).pages == 1
    assert count(str(docs.text(tmp_path / "b.txt", 67))).pages == 2
    assert count(str(docs.text(tmp_path / "c.txt", 200))).pages == 4


def test_form_feeds_start_new_pages(tmp_path):
    assert count(str(docs.text(tmp_path / "a.txt", 30, form_feeds_every=10))).pages == 3


def test_long_lines_wrap_at_80_columns(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_text(("x" * 160 + "\n") * 40)
    assert count(str(path)).pages == 2


def test_a_lone_newline_is_one_text_page(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n")
    job = count_job(str(path))
    assert job.format == "text" and job.pages == 1
