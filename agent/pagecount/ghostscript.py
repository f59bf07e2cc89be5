"""Asking Ghostscript, a kept interpreter, what a document really prints: pages, paper, colour.

The structural counters read what a document *says* (DSC comments, a PDF's page tree); only
an interpreter knows what a PostScript program *does* (``showpage`` in a loop, pages appended
after a lying ``%%Pages:``, colour operators hidden in procsets). This module runs ``gs`` on
the document and reads the pages it emits as a stream of low-resolution raw images (PPM,
or PGM when colour is not needed) on a pipe:

- pages: the number of images emitted;
- paper: each image's size in pixels at the known resolution (rotation swaps width and
  height, never the name);
- colour: a page is colour when one of its pixels is visibly not grey. Colours are converted
  with ``-dUseFastColor`` (no ICC profiles), so that a grey made of equal C, M and Y, or a
  rich black (C, M, Y under 100 % K), comes out exactly neutral, while one coloured logo
  does not. Ghostscript's ``inkcov`` device was tried first and rejected: it reports
  coverage per ink, so a rich black reads as cyan, magenta and yellow ink.

It is time-boxed: past ``timeout`` seconds the interpreter is killed and the answer is
"unknown" (the caller falls back to its structural count and says so). Rendering happens at
``RESOLUTION`` dpi without anti-aliasing (``any part of pixel``: a hairline or a small logo
still marks a pixel); a page larger than ``MAX_PIXELS`` is counted but not checked for colour.
"""
from __future__ import annotations

import os
import time

from agent.pagecount.paper import paper_from_mm

RESOLUTION = 24  # dpi: 1 pixel is about 1 mm, finer than the paper-size tolerance
DEFAULT_TIMEOUT = 20.0  # seconds
MAX_PIXELS = 40_000_000  # per page; beyond it, colour is not looked at (the page still counts)
# A pixel is colour when its channels differ by more than this (of 255): more than the noise
# of a grey JPEG, less than any colour one can see on paper.
GREY_TOLERANCE = 24
READ_CHUNK = 1 << 18


class Interpreted:
    """What the interpreter emitted: one paper name per page, the colour pages' numbers (1-based)."""

    __slots__ = ("papers", "colour_pages", "colour_checked", "complete", "problem")

    def __init__(self, colour_checked: bool = False) -> None:
        self.papers: list[str] = []
        self.colour_pages: set[int] = set()
        self.colour_checked = colour_checked
        self.complete = True  # False: the interpreter failed or was stopped part way
        self.problem = ""

    def __repr__(self) -> str:
        return (f"Interpreted(pages={self.pages}, papers={sorted(set(self.papers))}, "
                f"colour={sorted(self.colour_pages)}, complete={self.complete}, problem={self.problem!r})")

    @property
    def pages(self) -> int:
        return len(self.papers)


def available() -> str | None:
    """The path of ``gs``, or None when Ghostscript is not installed."""
    from shutil import which  # imported when a job needs the interpreter, not for every PDF

    return which("gs")


# Copies are the job's business, counted once by count_job: the interpreter must emit each page
# once. -dNumCopies=1 makes it ignore ``#copies``; a ``setpagedevice`` asking for NumCopies has
# that key dropped (PostScript only: the prologue is run before the job).
_ONE_COPY_PROLOGUE = ("/setpagedevice { dup /NumCopies known { dup length dict copy dup /NumCopies undef } if "
                      "//setpagedevice } bind def")


def command(gs: str, path: str, *, colour: bool, page_list: str = "", postscript: bool = False) -> list[str]:
    return [gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOPROMPT", "-dNOINTERPOLATE", "-dNumCopies=1",
            "-sstdout=%stderr", "-dUseFastColor", "-dTextAlphaBits=1", "-dGraphicsAlphaBits=1",
            f"-r{RESOLUTION}", "-sDEVICE=" + ("ppmraw" if colour else "pgmraw"),
            *([f"-sPageList={page_list}"] if page_list else []),
            "-sOutputFile=-", *(["-c", _ONE_COPY_PROLOGUE] if postscript else []), "-f", path]


def _visibly_colour(pixels: bytes) -> bool:
    """Whether an RGB run (whole pixels) holds a pixel whose channels differ visibly."""
    red, green, blue = pixels[0::3], pixels[1::3], pixels[2::3]
    if red == green == blue:
        return False
    for r, g, b in zip(red, green, blue):
        if max(r, g, b) - min(r, g, b) > GREY_TOLERANCE:
            return True
    return False


class _PageStream:
    """Parses a stream of PNM images (P5/P6) fed in arbitrary chunks."""

    def __init__(self, result: Interpreted, colour: bool, page_numbers: list[int] | None):
        self.result = result
        self.colour = colour
        self.page_numbers = page_numbers
        self.header = bytearray()
        self.remaining = 0  # bytes of the current page's pixels still to come
        self.carry = b""  # a partial pixel between chunks
        self.check = False  # the current page is still to be checked for colour

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.remaining == 0:
                view = self._read_header(view)
                continue
            take = min(self.remaining, len(view))
            if self.check:
                chunk = self.carry + bytes(view[:take])
                whole = len(chunk) - len(chunk) % 3
                if _visibly_colour(chunk[:whole]):
                    self.result.colour_pages.add(self._number())
                    self.check = False
                self.carry = chunk[whole:]
            self.remaining -= take
            view = view[take:]

    def _number(self) -> int:
        index = self.result.pages
        if self.page_numbers and index <= len(self.page_numbers):
            return self.page_numbers[index - 1]
        return index

    def _read_header(self, view: memoryview) -> memoryview:
        # "P6\n# comment\nW H\n255\n": four tokens, comments between them.
        added = min(len(view), 64)
        self.header += view[:added]
        tokens, pos = [], 0
        text = bytes(self.header)
        while len(tokens) < 4:
            while pos < len(text) and text[pos] in b" \t\r\n":
                pos += 1
            if pos < len(text) and text[pos] == 0x23:  # '#'
                end = text.find(b"\n", pos)
                if end < 0:
                    break
                pos = end + 1
                continue
            end = pos
            while end < len(text) and text[end] not in b" \t\r\n":
                end += 1
            if end >= len(text):
                break
            tokens.append(text[pos:end])
            pos = end
        if len(tokens) < 4:
            if len(self.header) > 4096:
                raise ValueError("not an image stream")
            return view[added:]  # the header goes on
        magic, width, height = tokens[0], int(tokens[1]), int(tokens[2])
        if magic not in (b"P5", b"P6"):
            raise ValueError(f"unexpected image type {magic!r}")
        consumed = pos + 1 - (len(self.header) - added)
        self.header = bytearray()
        self.result.papers.append(paper_from_mm(width * 25.4 / RESOLUTION, height * 25.4 / RESOLUTION))
        channels = 3 if magic == b"P6" else 1
        self.remaining = width * height * channels
        self.carry = b""
        self.check = self.colour and channels == 3 and width * height <= MAX_PIXELS
        return view[consumed:]


def interpret(path: str, *, colour: bool, timeout: float = DEFAULT_TIMEOUT, page_list: str = "",
              page_numbers: list[int] | None = None, postscript: bool = False) -> Interpreted | None:
    """Run Ghostscript on ``path``; None when it is not installed.

    ``page_list`` (PDF only: "1,3,5") renders only those pages, ``page_numbers`` names them in
    the result. The result's ``complete`` is False (with ``problem``) when the interpreter
    reported an error or ran out of time: its pages are then a lower bound, not a count.
    """
    gs = available()
    if gs is None:
        return None
    import select
    import subprocess
    result = Interpreted(colour_checked=colour)
    stream = _PageStream(result, colour, page_numbers)
    deadline = time.monotonic() + timeout
    process = subprocess.Popen(command(gs, path, colour=colour, page_list=page_list, postscript=postscript),
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    errors = bytearray()
    try:
        open_pipes = {process.stdout.fileno(): "out", process.stderr.fileno(): "err"}
        while open_pipes:
            left = deadline - time.monotonic()
            if left <= 0:
                result.complete, result.problem = False, f"Ghostscript took longer than {timeout:g} s"
                break
            ready, _, _ = select.select(list(open_pipes), [], [], left)
            for fd in ready:
                data = os.read(fd, READ_CHUNK)
                if not data:
                    del open_pipes[fd]
                elif open_pipes[fd] == "out":
                    stream.feed(data)
                elif len(errors) < 4096:
                    errors += data
    except ValueError as err:
        result.complete, result.problem = False, f"Ghostscript output not understood ({err})"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
    if result.complete and (process.returncode != 0 or stream.remaining):
        message = bytes(errors).decode("utf-8", "replace").strip().splitlines()
        result.complete = False
        result.problem = "Ghostscript stopped with an error" + (f": {message[0][:200]}" if message else "")
    return result
