"""Agent benchmarks: backend overhead per job and page-count throughput per format.

Run from the repository root:  .venv/bin/python bench/agent_bench.py [--quick]

Prints one line per figure, each beside its raw ceiling:
- backend overhead: wall time of the installed wrapper backend (installed as ``install``
  does: its own InstallDir venv, ``-IS``; a new process per job, as cupsd starts it: read
  stdin to a spool file, count, post to a loopback /Services server, exec the real backend)
  minus the wall time of the real backend alone on the same data. The "real" backend is
  ``/bin/sh -c 'cat >/dev/null'``; the server is the loopback double of
  tests/services_double.py (so server-side time is not in the figure).
- backend startup: the installed interpreter bare and importing the agent; the running
  interpreter bare, with the agent, with pypdf: the part of the overhead that is Python starting.
- count command: ``pageledger-agent count`` (the installed launcher) on a small mono PDF,
  as a multiple of ``python -c pass`` of the same environment.
- Ghostscript: the interpreter path's cost per page (a long text PostScript job).
- page counting: MB/s of ``count_document`` per format on a generated document, beside the
  MB/s of reading the same file (the I/O ceiling).

``--against REV`` measures before/after on a noisy machine: the agent of git revision REV
(as its install wrote the backend) and this one, interleaved job by job with the real
backend, so that both see the same load; medians of each.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pypdf import PdfWriter  # noqa: E402
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject, StreamObject  # noqa: E402

from agent.config import AgentConfig  # noqa: E402
from agent.install import backend_script, install_files  # noqa: E402
from agent.pagecount import count_document  # noqa: E402
from tests import sample_documents as docs  # noqa: E402
from tests.services_double import TOKEN, ServicesDouble  # noqa: E402

MB = 1 << 20


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- documents of a given size ------------------------------------------------------------

def big_pdf(path: Path, target: int) -> Path:
    """Pages that each draw a 256 KiB uncompressed grey image (a scanned document)."""
    writer = PdfWriter()
    image_bytes = 512 * 512
    pages = max(1, target // image_bytes)
    for index in range(pages):
        page = writer.add_blank_page(595, 842)
        image = StreamObject()
        image._data = os.urandom(image_bytes)
        image.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
                      NameObject("/Width"): NumberObject(512), NameObject("/Height"): NumberObject(512),
                      NameObject("/ColorSpace"): NameObject("/DeviceGray"),
                      NameObject("/BitsPerComponent"): NumberObject(8)})
        ref = writer._add_object(image)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): ref})})
        content = DecodedStreamObject()
        content.set_data(b"q 595 0 0 842 0 0 cm /Im0 Do Q 0 0 1 rg 10 10 50 50 re f")
        page[NameObject("/Contents")] = writer._add_object(content)
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def big_postscript(path: Path, target: int) -> Path:
    page = "".join(f"72 {700 - i * 12} moveto (line {i} of text on this page, some words) show\n" for i in range(55))
    with open(path, "w") as out:
        out.write("%!PS-Adobe-3.0\n%%Pages: (atend)\n%%EndComments\n")
        number = 0
        while out.tell() < target:
            number += 1
            out.write(f"%%Page: {number} {number}\n/Helvetica findfont 10 scalefont setfont\n{page}showpage\n")
        out.write(f"%%Trailer\n%%Pages: {number}\n%%EOF\n")
    return path


def _busy_raster_page(width: int, height: int, unit: int, apple: bool) -> bytes:
    """Each line: 128 literal pixels then runs of white to the end of the line (text-like)."""
    line = bytearray([0, 257 - 128]) + os.urandom(128 * unit)
    remaining = width - 128
    if apple:
        line += b"\x80"
    else:
        while remaining > 0:
            run = min(128, remaining)
            line += bytes([run - 1]) + b"\xff" * unit
            remaining -= run
    return bytes(line) * height


def big_pwg(path: Path, target: int) -> Path:
    width, height = 2480, 3508  # A4 at 300 dpi
    page = _busy_raster_page(width, height, 1, apple=False)
    header = docs.pwg_header(width=width, height=height, colour=False, dpi=300)
    with open(path, "wb") as out:
        out.write(b"RaS2")
        while out.tell() < target:
            out.write(header + page)
    return path


def big_urf(path: Path, target: int) -> Path:
    width, height = 2480, 3508
    page = _busy_raster_page(width, height, 3, apple=True)
    header = bytearray(32)
    header[0], header[1], header[2] = 24, 1, 1
    struct.pack_into(">III", header, 12, width, height, 300)
    pages = max(1, target // (len(page) + 32))
    with open(path, "wb") as out:
        out.write(b"UNIRAST\x00" + struct.pack(">I", pages))
        for _ in range(pages):
            out.write(bytes(header) + page)
    return path


def big_pcl5(path: Path, target: int) -> Path:
    row = os.urandom(310)
    rows = b"".join(b"\x1b*b310W" + row for _ in range(3300))
    with open(path, "wb") as out:
        out.write(b"\x1b%-12345X@PJL ENTER LANGUAGE=PCL\r\n\x1bE\x1b&l26A")
        while out.tell() < target:
            out.write(b"\x1b*t300R\x1b*r1A" + rows + b"\x1b*rB\x0c")
        out.write(b"\x1bE\x1b%-12345X")
    return path


def big_pclxl(path: Path, target: int) -> Path:
    block = os.urandom(64 * 1024)
    page = (b"\xc0\x02\xf8\x25\x43\xc0\x01\xf8\x03\x6a"
            + b"".join(b"\xb1\xfa" + struct.pack("<I", len(block)) + block for _ in range(16)) + b"\x44")
    with open(path, "wb") as out:
        out.write(b"\x1b%-12345X@PJL ENTER LANGUAGE=PCLXL\r\n) HP-PCL XL;2;0;bench\n\x41")
        while out.tell() < target:
            out.write(page)
        out.write(b"\x42\x1b%-12345X")
    return path


def big_text(path: Path, target: int) -> Path:
    line = "The quick brown fox jumps over the lazy dog; accounting every page since 2026.\n"
    with open(path, "w") as out:
        chunk = line * 10000
        while out.tell() < target:
            out.write(chunk)
    return path


GENERATORS = {"pdf": big_pdf, "postscript": big_postscript, "pwg-raster": big_pwg, "urf": big_urf,
              "pcl5": big_pcl5, "pclxl": big_pclxl, "text": big_text}


def read_ceiling(path: Path) -> float:
    start = time.perf_counter()
    with open(path, "rb") as handle:
        while handle.read(MB):
            pass
    return time.perf_counter() - start


def bench_counting(workdir: Path, size: int, runs: int) -> None:
    cases = [(fmt, generate, True) for fmt, generate in GENERATORS.items()]
    cases.insert(1, ("pdf", big_pdf, False))  # a monochrome job's PDF: no colour scan, no pypdf
    for fmt, generate, colour in cases:
        path = generate(workdir / f"doc.{fmt}", size)
        mb = path.stat().st_size / MB
        facts = count_document(str(path), colour=colour)
        assert facts.format == fmt and facts.pages, (fmt, facts)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            count_document(str(path), colour=colour)
            times.append(time.perf_counter() - start)
        ceiling = min(read_ceiling(path) for _ in range(3))
        median = statistics.median(times)
        label = fmt if colour else fmt + "-mono"
        print(f"pagecount {label:<11} {mb / median:8.1f} MB/s  ({mb:.1f} MB, {facts.pages} pages, "
              f"median of {runs}: {median * 1000:.0f} ms; read ceiling {mb / ceiling:.0f} MB/s)", flush=True)
        path.unlink()


_INSTALLED: dict[Path, tuple[str, Path]] = {}


def installed(workdir: Path) -> tuple[str, Path]:
    """The agent installed as ``pageledger-agent install`` does (its own InstallDir venv)."""
    if workdir not in _INSTALLED:
        _INSTALLED[workdir] = install_files(workdir / "install", say=lambda line: None)
    return _INSTALLED[workdir]


def bench_backend(workdir: Path, label: str, document: Path, runs: int, options: str = "") -> None:
    services = ServicesDouble(workdir / "spool").start()
    try:
        state = workdir / f"state-{label}"
        AgentConfig(state_dir=state).with_properties(
            {"ServicesUrl": services.url, "AgentToken": TOKEN, "ServerTimeout": "3"}).save()
        server_bin = workdir / f"serverbin-{label}"
        (server_bin / "backend").mkdir(parents=True)
        wrapper = server_bin / "backend" / "pageledger"
        python, lib_dir = installed(workdir)
        wrapper.write_text(backend_script(python, state, lib_dir))
        wrapper.chmod(0o700)
        real = server_bin / "backend" / "sink"
        real.write_text("#!/bin/sh\ncat >/dev/null\n")
        real.chmod(0o700)
        env = {"PATH": os.environ["PATH"], "CUPS_SERVERBIN": str(server_bin), "PRINTER": "bench",
               "FINAL_CONTENT_TYPE": "application/pdf", "TMPDIR": str(workdir),
               "DEVICE_URI": "pageledger:sink://printer"}

        def timed(argv0: str) -> float:
            with open(document, "rb") as data:
                start = time.perf_counter()
                result = subprocess.run([argv0 if argv0 != "real" else str(real), "1", "alice", "t", "1",
                                         f"job-uuid=urn:uuid:{time.monotonic_ns()} {options}"],
                                        stdin=data, env=env, capture_output=True)
                elapsed = time.perf_counter() - start
            if result.returncode != 0:
                raise RuntimeError(result.stderr.decode())
            return elapsed

        timed(str(wrapper))  # warm the page cache and the outbox
        wrapped = [timed(str(wrapper)) for _ in range(runs)]
        direct = [timed("real") for _ in range(runs)]
        overhead = [w - statistics.median(direct) for w in wrapped]
        mb = document.stat().st_size / MB
        print(f"backend overhead {label:<11} median {statistics.median(overhead) * 1000:7.1f} ms  "
              f"p95 {percentile(overhead, 95) * 1000:7.1f} ms  ({mb:.1f} MB PDF, {runs} jobs; "
              f"real backend alone median {statistics.median(direct) * 1000:.1f} ms)", flush=True)
        assert len(services.jobs) == runs + 1
    finally:
        services.stop()


def bench_startup(runs: int, workdir: Path | None = None) -> None:
    """What every job pays before doing anything: a new interpreter importing the agent."""
    if workdir is not None:
        python, lib_dir = installed(workdir)
        for label, argv in (("installed -IS", [python, "-IS", "-c", "pass"]),
                            ("installed+agent", [python, "-IS", "-c", f"import sys; sys.path.insert(0, {str(lib_dir)!r}); "
                                                                       "import agent.backend"])):
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                subprocess.run(argv, check=True)
                times.append(time.perf_counter() - start)
            print(f"backend startup {label:<15} median {statistics.median(times) * 1000:7.1f} ms  "
                  f"p95 {percentile(times, 95) * 1000:7.1f} ms  ({runs} runs)", flush=True)
    for label, code in (("interpreter", "pass"),
                        ("+agent", f"import sys; sys.path.insert(0, {str(ROOT)!r}); import agent.backend"),
                        ("+pypdf", f"import sys; sys.path.insert(0, {str(ROOT)!r}); import agent.backend, agent.pagecount.pdf"),
                        # An agent-only install has no 'cryptography' (a server dependency pypdf
                        # imports when it is there): what its start-up costs.
                        ("+pypdf-nocrypto", "import sys; sys.modules['cryptography'] = None; "
                                            f"sys.path.insert(0, {str(ROOT)!r}); import agent.backend, agent.pagecount.pdf")):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-I", "-c", code], check=True)
            times.append(time.perf_counter() - start)
        print(f"backend startup {label:<15} median {statistics.median(times) * 1000:7.1f} ms  "
              f"p95 {percentile(times, 95) * 1000:7.1f} ms  ({runs} runs of {Path(sys.executable).name} -I)", flush=True)


def bench_count_command(workdir: Path, runs: int) -> None:
    """``pageledger-agent count`` on a small mono PDF (the installed launcher) beside ``python -c pass``
    of the same environment (the issue's bound: at most 3 times)."""
    from agent.install import launcher_script

    python, lib_dir = installed(workdir)
    launcher = workdir / "pageledger-agent"
    launcher.write_text(launcher_script(python, workdir / "state-count", lib_dir))
    launcher.chmod(0o755)
    small = docs.pdf(workdir / "count-small.pdf", 2)

    def median_of(argv: list[str]) -> tuple[float, float]:
        times, cpu = [], []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return statistics.median(times), statistics.median(cpu)

    (bare, bare_cpu), (count, count_cpu) = median_of([python, "-c", "pass"]), median_of([str(launcher), "count", str(small)])
    print(f"count command     median {count * 1000:7.1f} ms  = {count / bare:.2f} x python -c pass "
          f"({bare * 1000:.1f} ms; {runs} runs; load {os.getloadavg()[0]:.1f}); CPU {count_cpu * 1000:.1f} ms = "
          f"{count_cpu / bare_cpu:.2f} x ({bare_cpu * 1000:.1f} ms)", flush=True)


def bench_ghostscript(workdir: Path, runs: int) -> None:
    """The interpreter path's cost per page: a 200-page PostScript job, colour and mono."""
    from agent.pagecount import postscript

    path = big_postscript(workdir / "gs.ps", 200 * 4200)
    pages = postscript.count(str(path)).pages
    for colour in (True, False):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            facts = postscript.count(str(path), colour=colour)
            times.append(time.perf_counter() - start)
        assert facts.pages == pages and facts.pages_known, facts
        median = statistics.median(times)
        print(f"ghostscript {'colour' if colour else 'mono':<6} median {median / pages * 1000:6.2f} ms/page  "
              f"({pages} pages of text, {median * 1000:.0f} ms a job; median of {runs})", flush=True)
    path.unlink()


def bench_against(workdir: Path, revision: str, rounds: int) -> None:
    """Before/after: REV's agent (``python -I`` with its checkout on sys.path, as its install
    wrote the backend) and this installed one, job by job in turn with the real backend."""
    old_root = workdir / "old"
    old_root.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "agent"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(old_root)], input=archive.stdout, check=True)
    python, lib_dir = installed(workdir)
    services = ServicesDouble(workdir / "spool").start()
    try:
        backend_dir = workdir / "serverbin-ab" / "backend"
        backend_dir.mkdir(parents=True)
        real = backend_dir / "sink"
        real.write_text("#!/bin/sh\ncat >/dev/null\n")
        real.chmod(0o700)
        wrappers = {}
        for name in ("before", "after"):
            state = workdir / f"state-{name}"
            state.mkdir()
            # Only the properties every version knows.
            (state / "agent.ini").write_text(f"[Properties]\nServicesUrl = {services.url}\nAgentToken = {TOKEN}\n"
                                             "ServerTimeout = 3\n")
            (state / "agent.ini").chmod(0o600)
            script = (f"#!{sys.executable} -I\nimport sys\nsys.path.insert(0, {str(old_root)!r})\n"
                      f"from agent.backend import main\nsys.exit(main(sys.argv, state_dir={str(state)!r}))\n"
                      if name == "before" else backend_script(python, state, lib_dir))
            wrapper = backend_dir / f"pageledger-{name}"
            wrapper.write_text(script)
            wrapper.chmod(0o700)
            wrappers[name] = wrapper
        env = {"PATH": os.environ["PATH"], "CUPS_SERVERBIN": str(workdir / "serverbin-ab"), "PRINTER": "bench",
               "FINAL_CONTENT_TYPE": "application/pdf", "TMPDIR": str(workdir),
               "DEVICE_URI": "pageledger:sink://printer"}

        cpu: dict[str, list[float]] = {}

        def timed(program: Path, document: Path, options: str) -> float:
            """Wall time of one job; its CPU time (user + system of the process and what it
            exec'd, less sensitive to other engineers' load) is kept in ``cpu``."""
            with open(document, "rb") as data:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                result = subprocess.run([str(program), "1", "alice", "t", "1",
                                         f"job-uuid=urn:uuid:{time.monotonic_ns()} {options}"],
                                        stdin=data, env=env, capture_output=True)
                elapsed = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if result.returncode != 0:
                raise RuntimeError(result.stderr.decode())
            cpu.setdefault(str(program), []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            return elapsed

        for label, document, options in (
                ("small mono PDF", docs.pdf(workdir / "ab-mono.pdf", 2), "print-color-mode=monochrome"),
                ("small colour PDF", docs.pdf(workdir / "ab-colour.pdf", 2, colour_pages=(1,)),
                 "print-color-mode=color")):
            for wrapper in wrappers.values():
                timed(wrapper, document, options)  # warm the page cache and the outbox
            times: dict[str, list[float]] = {"before": [], "after": [], "real": []}
            for _ in range(rounds):
                for name, wrapper in wrappers.items():
                    times[name].append(timed(wrapper, document, options))
                times["real"].append(timed(real, document, options))
            alone = statistics.median(times["real"])
            before, after = (statistics.median(times[n]) - alone for n in ("before", "after"))
            print(f"backend overhead {label:<16} median before ({revision}) {before * 1000:6.1f} ms, after "
                  f"{after * 1000:6.1f} ms ({rounds} interleaved rounds; real backend alone {alone * 1000:.1f} ms; "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)
            cpu_alone = statistics.median(cpu.pop(str(real)))
            cpu_before, cpu_after = (statistics.median(cpu.pop(str(wrappers[n]))) - cpu_alone for n in ("before", "after"))
            print(f"backend CPU      {label:<16} median before ({revision}) {cpu_before * 1000:6.1f} ms, after "
                  f"{cpu_after * 1000:6.1f} ms (user+system, over the real backend's {cpu_alone * 1000:.1f} ms)",
                  flush=True)
    finally:
        services.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller documents and fewer runs")
    parser.add_argument("--against", metavar="REV", help="interleave the backend of git revision REV with this one")
    args = parser.parse_args()
    size = 10 * MB if args.quick else 50 * MB
    with tempfile.TemporaryDirectory(prefix="pageledger-bench-") as tmp:
        workdir = Path(tmp)
        bench_startup(10 if args.quick else 20, workdir)
        bench_count_command(workdir, 10 if args.quick else 20)
        bench_ghostscript(workdir, 3 if args.quick else 5)
        if args.against:
            bench_against(workdir, args.against, 10 if args.quick else 30)
            return
        small = docs.pdf(workdir / "small.pdf", 2)
        bench_backend(workdir, "small", docs.pdf(workdir / "small-colour.pdf", 2, colour_pages=(1,)),
                      10 if args.quick else 40, "print-color-mode=color")
        bench_backend(workdir, "small-mono", small, 10 if args.quick else 40, "print-color-mode=monochrome")
        large = big_pdf(workdir / "large.pdf", size)
        label = "50MB" if not args.quick else "10MB"
        bench_backend(workdir, label, large, 3 if args.quick else 10, "print-color-mode=color")
        bench_backend(workdir, label + "-mono", large, 3 if args.quick else 10, "print-color-mode=monochrome")
        large.unlink()
        bench_counting(workdir, size, 2 if args.quick else 3)


if __name__ == "__main__":
    main()
