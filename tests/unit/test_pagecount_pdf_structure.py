import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from agent.pagecount import count_job
from agent.pagecount.paper import paper_from_points
from agent.pagecount.pdf_structure import Unsupported, pages_and_paper
from tests import sample_documents as docs

ROOT = Path(__file__).resolve().parents[2]


def pypdf_view(path: Path) -> tuple[int, list[str]]:
    reader = PdfReader(str(path))
    return len(reader.pages), [paper_from_points(float(p.mediabox.width), float(p.mediabox.height))
                               for p in reader.pages]


@pytest.mark.parametrize("pages,size", [(1, docs.A4_PT), (5, docs.LETTER_PT), (40, (842, 1191))])
def test_agrees_with_pypdf_on_pypdf_documents(tmp_path, pages, size):
    path = docs.pdf(tmp_path / "d.pdf", pages, size=size)
    assert pages_and_paper(str(path)) == pypdf_view(path)


def test_reads_object_streams_through_a_predicted_cross_reference_stream(tmp_path):
    path = docs.pdf_with_object_streams(tmp_path / "o.pdf", 7)
    assert pages_and_paper(str(path)) == pypdf_view(path) == (7, ["Letter"] * 7)


def test_follows_incremental_updates_to_the_newest_page_tree(tmp_path):
    path = docs.pdf(tmp_path / "d.pdf", 2)
    writer = PdfWriter(path, incremental=True)
    writer.add_blank_page(595, 842)
    updated = tmp_path / "updated.pdf"
    with open(updated, "wb") as handle:
        writer.write(handle)
    assert updated.read_bytes().startswith(path.read_bytes())  # really appended
    assert pages_and_paper(str(updated)) == pypdf_view(updated) == (3, ["A4"] * 3)


def test_encrypted_and_damaged_pdfs_are_left_to_pypdf(tmp_path):
    writer = PdfWriter(clone_from=str(docs.pdf(tmp_path / "d.pdf", 2)))
    writer.encrypt("", "owner", algorithm="RC4-128")
    encrypted = tmp_path / "e.pdf"
    with open(encrypted, "wb") as handle:
        writer.write(handle)
    with pytest.raises(Unsupported):
        pages_and_paper(str(encrypted))
    assert count_job(str(encrypted), monochrome=True).pages == 2  # through pypdf
    damaged = tmp_path / "x.pdf"
    damaged.write_bytes(docs.pdf(tmp_path / "d2.pdf", 3).read_bytes()[:-60])
    with pytest.raises(Unsupported):
        pages_and_paper(str(damaged))
    assert count_job(str(damaged), monochrome=True).pages == 3


def test_a_monochrome_pdf_job_is_counted_without_importing_pypdf(tmp_path):
    path = docs.pdf(tmp_path / "d.pdf", 4)
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from agent.pagecount import count_job; "
              f"job = count_job({str(path)!r}, monochrome=True, copies=2); "
              "print(job.pages, job.sheets, job.paper_size, 'pypdf' in sys.modules)")
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True)
    assert result.stdout.split() == ["4", "8", "A4", "False"], result.stderr


def test_corrupted_pdfs_give_a_count_or_unsupported_never_another_error(tmp_path):
    import random

    rng = random.Random(5)
    sources = [docs.pdf(tmp_path / "a.pdf", 3).read_bytes(),
               docs.pdf_with_object_streams(tmp_path / "b.pdf", 4).read_bytes()]
    outcomes = {"counted": 0, "unsupported": 0}
    for trial in range(300):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"c{trial}.pdf"
        path.write_bytes(bytes(data))
        try:
            pages, _paper = pages_and_paper(str(path))
            assert pages >= 0
            outcomes["counted"] += 1
        except Unsupported:
            outcomes["unsupported"] += 1
        if trial % 10 == 0:  # (a damaged PDF goes to Ghostscript: 50 ms a time)
            assert count_job(str(path), monochrome=True).bytes == len(data)  # never raises
    assert outcomes["counted"] and outcomes["unsupported"]


def test_a_colour_pdf_job_is_counted_without_importing_pypdf_or_logging(tmp_path):
    path = docs.pdf(tmp_path / "d.pdf", 4, colour_pages=(1, 3))
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from agent.pagecount import count_job; "
              f"job = count_job({str(path)!r}); "
              "print(job.pages, job.colour_pages, job.colour_known, 'pypdf' in sys.modules, 'logging' in sys.modules)")
    result = subprocess.run([sys.executable, "-IS", "-c", script], capture_output=True, text=True)
    assert result.stdout.split() == ["4", "2", "True", "False", "False"], result.stderr


def test_the_structural_colour_reader_agrees_with_the_pypdf_path(tmp_path):
    from agent.pagecount import pdf as pdf_counter
    from agent.pagecount.pdf_structure import pages_papers_and_colours

    for name, path in (("plain", docs.pdf(tmp_path / "a.pdf", 5, colour_pages=(0, 4))),
                       ("object streams", docs.pdf_with_object_streams(tmp_path / "b.pdf", 3))):
        count, papers, colours = pages_papers_and_colours(str(path))
        reader = PdfReader(str(path))
        assert count == len(reader.pages), name
        assert colours == [pdf_counter._page_colour(page)[0] for page in reader.pages], name
