"""The printing application the agent reads from a job (agent/printing_application.py), on real
documents made by Ghostscript and rewritten by qpdf."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agent.job_options import CupsJob
from agent.printing_application import clean_name, pdf_text, printing_application
from tests import sample_documents as docs

PAGE = "/Helvetica findfont 12 scalefont setfont 72 720 moveto (hi) show showpage\n"


def run(*argv: str) -> None:
    assert shutil.which(argv[0]), f"{argv[0]} is needed"
    subprocess.run(argv, check=True, timeout=60, capture_output=True)


def postscript(path: Path, header: str = "", body: str = "") -> Path:
    path.write_text(f"%!PS-Adobe-3.0\n{header}%%Pages: 1\n%%EndComments\n{body}{PAGE}")
    return path


def pdf_from(ps: Path, out: Path) -> Path:
    run("gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite", f"-sOutputFile={out}", str(ps))
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("apps")
    office = postscript(d / "office.ps", "%%Creator: (LibreOffice 7.5.3.2)\n")
    files = {"office.ps": office, "bare.ps": postscript(d / "bare.ps")}
    files["office.pdf"] = pdf_from(office, d / "office.pdf")  # Ghostscript copies %%Creator into /Creator
    files["bare.pdf"] = pdf_from(files["bare.ps"], d / "bare.pdf")  # /Producer only: Ghostscript itself
    # A /Creator in UTF-16BE, as Word writes it, set through a pdfmark
    word = "Microsoft\u00ae Word 2016".encode("utf-16-be").hex().upper()
    files["word.pdf"] = pdf_from(postscript(d / "word.ps", body=f"[ /Creator <FEFF{word}> /DOCINFO pdfmark\n"),
                                 d / "word.pdf")
    files["ps2write.ps"] = d / "ps2write.ps"
    run("gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=ps2write", f"-sOutputFile={files['ps2write.ps']}",
        str(office))
    files["objstm.pdf"] = d / "objstm.pdf"  # the information dictionary inside a compressed object stream
    run("qpdf", "--object-streams=generate", str(files["office.pdf"]), str(files["objstm.pdf"]))
    files["encrypted.pdf"] = d / "encrypted.pdf"
    run("qpdf", "--encrypt", "u", "o", "256", "--", str(files["office.pdf"]), str(files["encrypted.pdf"]))
    # No information dictionary (PDF 2.0 deprecates it), only the XMP metadata: the trailer's
    # /Info is renamed in place in qpdf's uncompressed form, so every offset stays right.
    qdf = d / "office.qdf.pdf"
    run("qpdf", "--qdf", "--object-streams=disable", str(files["office.pdf"]), str(qdf))
    data = qdf.read_bytes()
    assert data.count(b"/Info ") == 1
    files["xmp.pdf"] = d / "xmp.pdf"
    files["xmp.pdf"].write_bytes(data.replace(b"/Info ", b"/Xnfo "))
    # What a filtered queue's backend gets: cups-filters' pdftopdf keeps the information
    # dictionary; pdftops makes PostScript that names the converter.
    for name, filter_ in (("pdftopdf.pdf", "pdftopdf"), ("pdftops.ps", "pdftops")):
        files[name] = d / name
        assert Path(f"/usr/lib/cups/filter/{filter_}").exists(), "cups-filters is needed"
        with open(files[name], "wb") as out:
            subprocess.run([f"/usr/lib/cups/filter/{filter_}", "1", "alice", "t", "1", "number-up=2",
                            str(files["office.pdf"])], stdout=out, stderr=subprocess.DEVNULL, check=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "CONTENT_TYPE": "application/pdf"})
    return files


@pytest.mark.parametrize("name,pdl,application", [
    ("office.ps", "postscript", "LibreOffice"),  # %%Creator, its version cut off
    ("office.pdf", "pdf", "LibreOffice"),  # /Creator before /Producer (GPL Ghostscript)
    ("bare.pdf", "pdf", "GPL Ghostscript"),  # no /Creator: the /Producer
    ("word.pdf", "pdf", "Microsoft\u00ae Word"),
    ("ps2write.ps", "postscript", "GPL Ghostscript"),  # a converter writes its own %%Creator
    ("objstm.pdf", "pdf", "LibreOffice"),
    ("xmp.pdf", "pdf", "LibreOffice"),  # xmp:CreatorTool
    ("encrypted.pdf", "pdf", ""),  # its strings are encrypted: not read
    ("bare.ps", "postscript", ""),  # no %%Creator: unknown
    ("pdftopdf.pdf", "pdf", "LibreOffice"),
    ("pdftops.ps", "postscript", "GPL Ghostscript"),
])
def test_the_application_is_what_the_document_says_made_it(made, name, pdl, application):
    assert printing_application({}, str(made[name]), pdl) == application


def test_the_macos_application_option_comes_first_and_other_formats_are_unknown(made, tmp_path):
    job = CupsJob.from_argv(["7", "alice", "report.docx", "1",
                             "com.apple.print.JobInfo.PMApplicationName=Microsoft\\ Word job-uuid=urn:uuid:1"])
    assert printing_application(job.options, str(made["office.pdf"]), "pdf") == "Microsoft Word"
    assert printing_application({}, str(docs.pcl5(tmp_path / "j.pcl", 2)), "pcl5") == ""
    assert printing_application({}, str(docs.text(tmp_path / "t.txt", 5)), "text") == ""
    assert printing_application({}, None, "pdf") == ""
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(made["office.pdf"].read_bytes()[:300])
    assert printing_application({}, str(empty), "pdf") == printing_application({}, str(damaged), "pdf") == ""
    assert printing_application({}, str(tmp_path / "missing.ps"), "postscript") == ""


@pytest.mark.parametrize("raw,name", [
    ("LibreOffice 7.5.3.2", "LibreOffice"),
    ("cairo 1.16.0 (https://cairographics.org)", "cairo"),
    ("GPL Ghostscript 10000 (ps2write)", "GPL Ghostscript"),
    ("Mozilla Firefox", "Mozilla Firefox"),
    ("Acrobat PDFMaker v23 for Word", "Acrobat PDFMaker"),
    ("(Writer)", "Writer"),
    ("  Evince\t\x07 ", "Evince"),
    ("3.14", "3.14"),  # nothing but a version: kept
    ("x" * 100, "x" * 64),
    ("\x00\x1b", ""),
])
def test_names_are_made_comparable(raw, name):
    assert clean_name(raw) == name


def test_pdf_strings_decode_their_escapes_and_encodings():
    assert pdf_text(rb"Smith \(ed.\)\\ \101\102 x") == "Smith (ed.)\\ AB x"
    assert pdf_text(b"FEFF00570072", hexadecimal=True) == "Wr"  # a hex string in UTF-16BE
    assert pdf_text(b"FEFF 0057 007", hexadecimal=True) == "Wp"  # white space skipped, a last odd digit 0
    assert pdf_text(b"2016") == "2016"  # a literal string of digits is no hex string
    assert pdf_text(b"\xef\xbb\xbfW\xc3\xa9b") == "W\u00e9b"
    assert pdf_text(b"Caf\xe9") == "Caf\u00e9"
