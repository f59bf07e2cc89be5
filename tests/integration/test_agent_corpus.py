"""The agent's counts on a corpus made by real tools (Ghostscript devices, qpdf), each file beside
its truth in a manifest: what an interpreter prints, per page paper, visible colour.

Every document is generated here from small PostScript sources, so the truth is known by
construction: the number of ``showpage``s executed, the ``/PageSize`` of each page, the pages
that paint visible colour. Sizes are kept small (a long job is 300 pages of one line of text)
so that the whole corpus takes seconds.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from agent.pagecount import count_document, count_job
from tests.integration.cups_harness import ensure_packages

A4, A3, A4_LANDSCAPE, LETTER = (595, 842), (842, 1191), (842, 595), (612, 792)


def ps_program(pages: list[tuple[tuple[int, int], str]], *, dsc: str = "", setup: str = "") -> str:
    """A PostScript program: each page sets its size and paints what its string says."""
    lines = ["%!PS-Adobe-3.0" if dsc else "%!PS", *([dsc] if dsc else []), setup]
    for (width, height), paint in pages:
        lines += [f"<< /PageSize [{width} {height}] >> setpagedevice",
                  "/Helvetica findfont 20 scalefont setfont 72 72 moveto (text) show", paint, "showpage"]
    return "\n".join(lines) + "\n"


RED_LOGO = "gsave 1 0 0 setrgbcolor 500 780 20 20 rectfill grestore"  # one small coloured logo
RICH_BLACK = "gsave 0.6 0.4 0.4 1 setcmykcolor 72 300 300 200 rectfill grestore"
CMY_GREY = "gsave 0.5 0.5 0.5 0 setcmykcolor 72 300 300 200 rectfill grestore"
RGB_GREY = "gsave 0.3 0.3 0.3 setrgbcolor 72 300 300 200 rectfill grestore"


@dataclass
class Truth:
    pages: int
    colour_pages: int | None  # None: the format does not tell (colour_known False)
    paper: str
    paper_counts: dict[str, int] = field(default_factory=dict)
    pages_known: bool = True


def gs(device: str, source: Path, out: Path, *extra: str) -> Path:
    result = subprocess.run(["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", f"-sDEVICE={device}", *extra,
                             f"-sOutputFile={out}", str(source)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


def qpdf(*args: str) -> None:
    result = subprocess.run(["qpdf", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 3), result.stderr  # 3: done, with warnings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- the corpus: name -> (how it is made, its truth) ----------------------------------------

def dsc_less_loop(d: Path) -> Path:
    return write(d / "loop.ps", "%!PS\n/Helvetica findfont 20 scalefont setfont\n"
                                "1 1 4 { 72 72 moveto (page) show showpage } for\n")


def lying_dsc(d: Path) -> Path:
    said = "%!PS-Adobe-3.0\n%%Pages: 2\n%%EndComments\n%%Page: 1 1\nshowpage\n%%Page: 2 2\nshowpage\n%%EOF\n"
    appended = "%!PS\n" + "72 72 moveto 100 100 lineto stroke showpage\n" * 3  # a second job concatenated
    return write(d / "lying.ps", said + appended)


def colour_ps2write(d: Path) -> Path:
    source = write(d / "colour-src.ps", ps_program([(A4, ""), (A4, RED_LOGO), (A4, RGB_GREY)]))
    return gs("ps2write", source, d / "colour.ps")


def rich_black_pdf(d: Path) -> Path:
    source = write(d / "rich-src.ps", ps_program([(A4, RICH_BLACK), (A4, CMY_GREY), (A4, RED_LOGO), (A4, RGB_GREY)]))
    return gs("pdfwrite", source, d / "rich.pdf")


def rich_black_ps(d: Path) -> Path:
    source = write(d / "rich-src2.ps", ps_program([(A4, RICH_BLACK), (A4, CMY_GREY), (A4, RED_LOGO)]))
    return gs("ps2write", source, d / "rich.ps")


def mixed_paper_pdf(d: Path) -> Path:
    source = write(d / "mixed-src.ps", ps_program([(A4, ""), (A3, ""), (A4_LANDSCAPE, ""), (A4, RED_LOGO)]))
    return gs("pdfwrite", source, d / "mixed.pdf")


def rotated_pdf(d: Path) -> Path:
    plain = gs("pdfwrite", write(d / "rot-src.ps", ps_program([(A4, "")] * 3)), d / "rot-in.pdf")
    out = d / "rotated.pdf"
    qpdf(str(plain), "--rotate=+90:1,3", str(out))  # /Rotate: the paper stays A4
    return out


def mixed_paper_ps(d: Path) -> Path:
    return write(d / "mixed.ps", ps_program([(A3, ""), (A4, ""), (LETTER, "")]))


def damaged_xref_pdf(d: Path) -> Path:
    """Every cross-reference offset wrong: bytes inserted after the header."""
    plain = gs("pdfwrite", write(d / "dmg-src.ps", ps_program([(A4, "")] * 3)), d / "dmg-in.pdf")
    out = d / "damaged-xref.pdf"
    qpdf(str(plain), "--object-streams=disable", "--compress-streams=n", str(d / "dmg-plain.pdf"))
    data = (d / "dmg-plain.pdf").read_bytes()
    header_end = data.index(b"\n", data.index(b"%PDF")) + 1
    out.write_bytes(data[:header_end] + b"%" + b"x" * 4000 + b"\n" + data[header_end:])
    return out


def truncated_pdf(d: Path) -> Path:
    """The end cut off: no startxref, no trailer (a download that stopped)."""
    plain = gs("pdfwrite", write(d / "cut-src.ps", ps_program([(A4, "")] * 2 + [(A3, "")])), d / "cut-in.pdf")
    qpdf(str(plain), "--object-streams=disable", str(d / "cut-plain.pdf"))
    data = (d / "cut-plain.pdf").read_bytes()
    out = d / "truncated.pdf"
    out.write_bytes(data[:data.rindex(b"startxref")])
    return out


def encrypted_pdf(d: Path, bits: str = "256") -> Path:
    """Encrypted with an empty user password (opens without one, as most 'protected' PDFs)."""
    plain = gs("pdfwrite", write(d / "enc-src.ps", ps_program([(A4, ""), (A4, RED_LOGO)])), d / "enc-in.pdf")
    out = d / f"encrypted-{bits}.pdf"
    weak = bits == "128"
    qpdf(*(["--allow-weak-crypto"] if weak else []), "--encrypt", "", "owner-secret", bits,
         *(["--use-aes=n"] if weak else []), "--", str(plain), str(out))
    return out


def locked_pdf(d: Path) -> Path:
    """Encrypted with a user password: no one can read it without the password."""
    plain = gs("pdfwrite", write(d / "lock-src.ps", ps_program([(A4, "")] * 3)), d / "lock-in.pdf")
    out = d / "locked.pdf"
    qpdf("--object-streams=disable", "--encrypt", "user-secret", "owner-secret", "256", "--", str(plain), str(out))
    return out


def long_ps(d: Path) -> Path:
    return gs("ps2write", write(d / "long-src.ps", ps_program([(A4, "")] * 300)), d / "long.ps")


def pxlcolor(d: Path) -> Path:
    source = write(d / "pxl-src.ps", ps_program([(A4, ""), (A4, RED_LOGO)]))
    return gs("pxlcolor", source, d / "colour.pxl", "-r100")


def pwg_mixed(d: Path) -> Path:
    source = write(d / "pwg-src.ps", ps_program([(A4, ""), (A3, "")]))
    return gs("pwgraster", source, d / "mixed.pwg", "-r50", "-dcupsColorSpace=18", "-dcupsBitsPerColor=8")


def cups_raster(d: Path, colour_space: str = "19") -> Path:
    """Ghostscript's ``cups`` device: CUPS raster v3, little-endian (3SaR), as a CUPS raster
    driver's filter chain makes it; sRGB 8-bit (19) or its default 1-bit white (0)."""
    source = write(d / "cups-src.ps", ps_program([(A4, ""), (A4, RED_LOGO), (A3, "")]))
    return gs("cups", source, d / f"cups-{colour_space}.ras", "-r50", f"-dcupsColorSpace={colour_space}",
              "-dcupsBitsPerColor=8" if colour_space != "0" else "-dcupsBitsPerColor=1")


MANIFEST: dict[str, tuple[Callable[[Path], Path], Truth]] = {
    "DSC-less PostScript, showpage in a loop": (dsc_less_loop, Truth(4, 0, "A4", {"A4": 4})),
    "lying DSC: %%Pages: 2, then three pages appended": (lying_dsc, Truth(5, 0, "A4", {"A4": 5})),
    "colour PostScript from ps2write (colour in procsets)": (colour_ps2write, Truth(3, 1, "A4", {"A4": 3})),
    "rich black and CMY grey are not colour, a logo is (PDF)": (rich_black_pdf, Truth(4, 1, "A4", {"A4": 4})),
    "rich black and CMY grey are not colour, a logo is (PS)": (rich_black_ps, Truth(3, 1, "A4", {"A4": 3})),
    "mixed paper PDF, one page landscape": (mixed_paper_pdf, Truth(4, 1, "mixed", {"A4": 3, "A3": 1})),
    "rotated pages stay A4 (qpdf --rotate)": (rotated_pdf, Truth(3, 0, "A4", {"A4": 3})),
    "mixed paper PostScript": (mixed_paper_ps, Truth(3, 0, "mixed", {"A3": 1, "A4": 1, "Letter": 1})),
    "damaged PDF: every xref offset wrong": (damaged_xref_pdf, Truth(3, 0, "A4", {"A4": 3})),
    "damaged PDF: truncated before startxref": (truncated_pdf, Truth(3, 0, "mixed", {"A4": 2, "A3": 1})),
    "encrypted PDF, empty user password (qpdf AES-256)": (encrypted_pdf, Truth(2, 1, "A4", {"A4": 2})),
    "encrypted PDF, empty user password (qpdf RC4-128)": (lambda d: encrypted_pdf(d, "128"),
                                                         Truth(2, 1, "A4", {"A4": 2})),
    "long job: 300 pages through ps2write": (long_ps, Truth(300, 0, "A4", {"A4": 300})),
    "PCL XL colour (pxlcolor)": (pxlcolor, Truth(2, 1, "A4", {"A4": 2})),
    "Ghostscript cups device, sRGB, A4 and A3 (CUPS raster v3)": (cups_raster, Truth(3, 1, "mixed", {"A4": 2, "A3": 1})),
    "Ghostscript cups device, 1-bit white (CUPS raster v3)": (lambda d: cups_raster(d, "0"),
                                                             Truth(3, 0, "mixed", {"A4": 2, "A3": 1})),
    "Ghostscript pwgraster device, grey, A4 and A3": (pwg_mixed, Truth(2, 0, "mixed", {"A4": 1, "A3": 1})),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    ensure_packages()
    assert shutil.which("gs") and shutil.which("qpdf"), "ghostscript and qpdf are needed"
    return tmp_path_factory.mktemp("corpus")


@pytest.mark.parametrize("name", list(MANIFEST))
def test_each_document_of_the_corpus_is_counted_as_its_manifest_says(corpus, name):
    make, truth = MANIFEST[name]
    path = make(corpus)
    job = count_job(str(path))
    assert (job.pages, job.pages_known) == (truth.pages, truth.pages_known), (name, job)
    assert (job.colour_pages, job.colour_known) == (truth.colour_pages, True), (name, job)
    assert job.paper_size == truth.paper, (name, job)
    assert {size: p for size, (p, _c) in job.paper_counts.items()} == truth.paper_counts, (name, job)
    assert sum(c for _p, c in job.paper_counts.values()) == truth.colour_pages


def test_a_pdf_locked_with_a_user_password_is_flagged_never_a_confident_number(corpus):
    job = count_job(str(locked_pdf(corpus)))
    assert not job.colour_known and job.unknown_reason
    assert job.pages != 0  # never 0 pages for a document that has some
    if job.pages_known:  # the page tree is readable: it is the count
        assert job.pages == 3


def test_an_interpreter_out_of_time_is_flagged_and_the_structural_count_stands(corpus):
    path = long_ps(corpus)
    job = count_job(str(path), timeout=0.01)
    assert not job.pages_known and "longer than" in job.unknown_reason
    assert job.pages == 300  # ps2write writes one %%Page: per page: the structure's count
    assert not job.colour_known


def test_a_pwg_raster_job_of_two_sizes_counts_both_pages(corpus):
    facts = count_document(str(pwg_mixed(corpus)))
    assert (facts.format, facts.pages, facts.colour_pages, facts.colour_known) == ("pwg-raster", 2, 0, True)


def test_a_program_that_never_ends_or_fails_part_way_is_flagged_not_counted_confidently(corpus):
    endless = write(corpus / "endless.ps", "%!PS\nshowpage\n{ 1 pop } loop\n")
    job = count_job(str(endless), timeout=1)
    assert not job.pages_known and "longer than 1 s" in job.unknown_reason
    failing = write(corpus / "failing.ps", "%!PS\nshowpage\nno_such_operator\nshowpage\n")
    job = count_job(str(failing))
    assert not job.pages_known and "error" in job.unknown_reason
    assert job.pages == 2  # the structure's count (two showpage operators), flagged
