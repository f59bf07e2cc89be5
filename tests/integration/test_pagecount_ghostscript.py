"""Page counting on what real producers write: Ghostscript's PDF, PostScript, PCL 5, PCL XL,
PWG raster, Apple raster and PCLm devices, from a 3-page PostScript job whose second page
has a red box."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from agent.pagecount import count_document
from tests import sample_documents as docs
from tests.integration.cups_harness import ensure_packages

# device and options -> (format, colour pages); None when the format does not tell colour.
DEVICES = {
    ("pdfwrite",): ("pdf", 1),
    ("ps2write",): ("postscript", 1),  # its prolog names colour operators: Ghostscript tells which page paints
    ("ljet4",): ("pcl5", 0),  # monochrome PCL 5e: the red box is dithered black
    ("ljet4pjl",): ("pcl5", 0),
    ("pxlmono",): ("pclxl", 0),
    ("pxlcolor",): ("pclxl", 1),
    ("pwgraster", "-dcupsColorSpace=18", "-dcupsBitsPerColor=8"): ("pwg-raster", 0),
    ("pwgraster", "-dcupsColorSpace=19", "-dcupsBitsPerColor=8"): ("pwg-raster", 1),
    ("appleraster",): ("urf", 0),
    ("appleraster", "-dcupsColorSpace=19", "-dcupsBitsPerColor=8"): ("urf", 1),
}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    ensure_packages()  # ghostscript comes with the CUPS test packages
    assert shutil.which("gs"), "ghostscript (gs) is needed"
    return docs.postscript(tmp_path_factory.mktemp("gs") / "job.ps", 3, dsc_pages=3, colour_pages=(1,))


@pytest.mark.parametrize("device", list(DEVICES), ids=[" ".join(d) for d in DEVICES])
def test_ghostscript_output_is_counted(job, tmp_path, device):
    out = tmp_path / "out.bin"
    result = subprocess.run(["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", f"-sDEVICE={device[0]}", *device[1:],
                             "-r100", "-sPAPERSIZE=a4", f"-sOutputFile={out}", str(job)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected_format, expected_colour = DEVICES[device]
    facts = count_document(str(out))
    assert (facts.format, facts.pages, facts.paper_size) == (expected_format, 3, "A4")
    if expected_colour is None:
        assert (facts.colour_pages, facts.colour_known) == (0, False)
    else:
        assert (facts.colour_pages, facts.colour_known) == (expected_colour, True)


def test_pdf_from_ghostscript_and_cups_filters_reads_the_same_without_pypdf(job, tmp_path):
    """The monochrome fast path (pdf_structure) against pypdf on real producers' PDFs."""
    from pypdf import PdfReader

    from agent.pagecount.paper import paper_from_points
    from agent.pagecount.pdf_structure import pages_and_paper

    gs_pdf = tmp_path / "gs.pdf"
    subprocess.run(["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite", f"-sOutputFile={gs_pdf}",
                    str(job)], check=True, timeout=60)
    text = docs.text(tmp_path / "notes.txt", 150)
    produced = [gs_pdf]
    for name, filter_, content_type, options, source in (
            ("pdftopdf-2up.pdf", "pdftopdf", "application/pdf", "number-up=2", gs_pdf),
            ("texttopdf.pdf", "texttopdf", "text/plain", "", text)):
        out = tmp_path / name
        with open(out, "wb") as handle:
            subprocess.run([f"/usr/lib/cups/filter/{filter_}", "1", "alice", "t", "1", options, str(source)],
                           stdout=handle, stderr=subprocess.DEVNULL, check=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "CONTENT_TYPE": content_type})
        produced.append(out)
    for path in produced:
        reader = PdfReader(str(path))
        assert pages_and_paper(str(path)) == (len(reader.pages), [
            paper_from_points(float(page.mediabox.width), float(page.mediabox.height)) for page in reader.pages])
    assert pages_and_paper(str(produced[1]))[0] == 2  # 3 pages 2-up
