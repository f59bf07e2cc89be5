"""A private CUPS print server with a virtual IPP Everywhere printer, for tests (see PEERS.md).

``CupsHarness`` installs what is missing (Debian packages, as root), then starts in a temp
dir, on free loopback ports: a private D-Bus system bus, ``ippeveprinter -2`` (duplex) whose
``-c`` script keeps every document it "prints" with its IPP attributes, and a private
``cupsd`` whose ServerBin is a private copy of /usr/lib/cups (so a backend can be installed
into it without touching the system's). Everything is stopped by pid. A missing package or a
service that does not start fails the test (under ``CI=true`` and everywhere else alike).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

DEBIAN_PACKAGES = ["cups", "cups-client", "cups-bsd", "cups-ipp-utils", "cups-filters", "dbus", "ghostscript",
                   "qpdf"]
NEEDED_PROGRAMS = {"cupsd": "cups", "lpadmin": "cups-client", "lpstat": "cups-client", "lp": "cups-client",
                   "ippeveprinter": "cups-ipp-utils", "ipptool": "cups-ipp-utils", "dbus-daemon": "dbus",
                   "gs": "ghostscript", "qpdf": "qpdf"}
NEEDED_FILES = {"/usr/lib/cups/filter/pdftopdf": "cups-filters", "/usr/lib/cups/backend/ipp": "cups",
                "/usr/share/dbus-1/system.conf": "dbus"}

JOB_STATE_TEST = """{
  NAME "job state"
  OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $job_id
  ATTR name requesting-user-name root
  ATTR keyword requested-attributes job-state,job-state-reasons,job-printer-state-message
  DISPLAY job-state
  DISPLAY job-state-reasons
  DISPLAY job-printer-state-message
}
"""

PRINTER_SCRIPT = """#!/bin/sh
# ippeveprinter -c: keep the document and the job's IPP attributes.
out={out}
name=$(basename "$1")
cp "$1" "$out/$name"
# Written aside and renamed: a test waiting for the .env file must never read it half written.
env | grep '^IPP_' > "$out/.$name.partial.env"
mv "$out/.$name.partial.env" "$out/$name.env"
exit 0
"""

JOB_STATES = {"3": "pending", "4": "pending-held", "5": "processing", "6": "processing-stopped",
              "7": "canceled", "8": "aborted", "9": "completed"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_requirements() -> list[str]:
    missing = {pkg for prog, pkg in NEEDED_PROGRAMS.items() if shutil.which(prog) is None
               and not Path("/usr/sbin", prog).exists()}
    missing |= {pkg for path, pkg in NEEDED_FILES.items() if not Path(path).exists()}
    return sorted(missing)


def unavailable(reason: str):
    """A missing peer fails the test, locally as under CI=true: nothing is skipped."""
    pytest.fail(reason)


def ensure_packages() -> None:
    """Install the Debian packages the harness needs when they are missing (needs root)."""
    missing = missing_requirements()
    if not missing:
        return
    if os.geteuid() != 0:
        unavailable(f"missing Debian packages {missing} and not root to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
    result = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES],
                            env=env, capture_output=True, text=True)
    still = missing_requirements()
    if still:
        unavailable(f"could not install {still}: {result.stderr[-2000:]}")


class AppSocketPrinter:
    """A raw AppSocket (port 9100 style) printer: keeps what each connection sends, as a file."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._lock = threading.Lock()
        printer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with printer._lock:
                    printer._count += 1
                    path = printer.out_dir / f"job-{printer._count:04d}.partial"
                with open(path, "wb") as out:
                    while chunk := self.rfile.read1(1 << 16):
                        out.write(chunk)
                path.rename(path.with_suffix(".bin"))

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        return f"socket://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "AppSocketPrinter":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[Path]:
        return sorted(self.out_dir.glob("*.bin"))


class CupsHarness:
    """``base`` is where its temp dir goes: filters and backends run as ``lp`` and must be able
    to traverse it, so it is not pytest's tmp_path (under /tmp/pytest-of-root, mode 0700)."""

    def __init__(self, base: Path = Path("/tmp")):
        self.dir = Path(tempfile.mkdtemp(prefix="pageledger-cups-", dir=base))
        self.dir.chmod(0o755)
        self.procs: dict[str, subprocess.Popen] = {}
        self.cups_port = free_port()
        self.ipp_port = free_port()
        self.printed_dir = self.dir / "printed"
        self.server_bin = self.dir / "serverbin"
        self.socket_printer: AppSocketPrinter | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.cups_port}"

    @property
    def printer_uri(self) -> str:
        return f"ipp://localhost:{self.ipp_port}/ipp/print"

    def start(self) -> "CupsHarness":
        ensure_packages()
        try:
            self._start_dbus()
            self._start_printer()
            self._start_cupsd()
        except Exception:
            self.stop(remove=False)
            raise
        return self

    def stop(self, remove: bool = True) -> None:
        """Stop every service by its pid; remove the temp dir (kept with PAGELEDGER_KEEP_CUPS=1)."""
        self._stop_processes()
        if remove and os.environ.get("PAGELEDGER_KEEP_CUPS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_processes(self) -> None:
        if self.socket_printer is not None:
            self.socket_printer.stop()
        for name in ("cupsd", "ippeveprinter", "ippeveprinter-mono", "dbus"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env or os.environ.copy(),
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def _wait(self, name: str, ready, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log(name)[-2000:]}")
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} not ready after {timeout}s: {self.log(name)[-2000:]}")

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _start_dbus(self) -> None:
        socket_path = self.dir / "system_bus_socket"
        self.dbus_address = f"unix:path={socket_path}"
        self._spawn("dbus", ["dbus-daemon", "--config-file=/usr/share/dbus-1/system.conf", "--nofork",
                             "--nopidfile", f"--address={self.dbus_address}"])
        self._wait("dbus", socket_path.exists)

    def _start_printer(self) -> None:
        self.printed_dir.mkdir(exist_ok=True)
        script = self.dir / "printer-command.sh"
        script.write_text(PRINTER_SCRIPT.format(out=self.printed_dir))
        script.chmod(0o755)
        spool = self.dir / "ippeveprinter"
        spool.mkdir()
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.dbus_address}
        self._spawn("ippeveprinter", [
            "ippeveprinter", "-2", "-s", "10,10", "-p", str(self.ipp_port), "-n", "localhost", "-r", "off", "-d", str(spool),
            "-k", "-c", str(script), "-f",
            "application/pdf,image/pwg-raster,image/urf,application/postscript,text/plain",
            "PageLedger Test Printer"], env)
        self._wait("ippeveprinter", lambda: subprocess.run(
            ["ipptool", "-q", self.printer_uri, "get-printer-attributes.test"], capture_output=True).returncode == 0)

    def start_mono_printer(self) -> str:
        """A second virtual printer that prints neither colour nor both sides (``-s`` without a
        colour speed, no ``-2``); its URI. Stopped with the others; started once per harness."""
        if getattr(self, "mono_printer_uri", None):
            return self.mono_printer_uri
        port = free_port()
        spool = self.dir / "ippeveprinter-mono"
        spool.mkdir()
        script = self.dir / "printer-command.sh"
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.dbus_address}
        uri = f"ipp://localhost:{port}/ipp/print"
        self._spawn("ippeveprinter-mono", [
            "ippeveprinter", "-s", "10", "-p", str(port), "-n", "localhost", "-r", "off", "-d", str(spool),
            "-k", "-c", str(script), "-f", "application/pdf,image/pwg-raster,image/urf,text/plain",
            "PageLedger Mono Printer"], env)
        self._wait("ippeveprinter-mono", lambda: subprocess.run(
            ["ipptool", "-q", uri, "get-printer-attributes.test"], capture_output=True).returncode == 0)
        self.mono_printer_uri = uri
        return uri

    def _private_server_bin(self) -> None:
        """A ServerBin of symlinks to the system's, with a backend dir of our own."""
        self.server_bin.mkdir(mode=0o755)
        for entry in Path("/usr/lib/cups").iterdir():
            if entry.name != "backend":
                (self.server_bin / entry.name).symlink_to(entry)
        backends = self.server_bin / "backend"
        backends.mkdir(mode=0o755)
        for entry in Path("/usr/lib/cups/backend").iterdir():
            (backends / entry.name).symlink_to(entry.resolve())

    def _start_cupsd(self) -> None:
        root = self.dir / "cups"
        spool = root / "spool"
        for path in (root, spool, root / "cache", root / "state", root / "log", root / "ppd"):
            path.mkdir(parents=True, exist_ok=True)
        temp = spool / "tmp"
        temp.mkdir()
        shutil.chown(temp, "root", "lp")
        temp.chmod(0o1770)
        shutil.chown(spool, "root", "lp")
        spool.chmod(0o710)
        for name in ("raw.types", "raw.convs"):
            if Path("/etc/cups", name).exists():
                shutil.copy(Path("/etc/cups", name), root / name)
        self._private_server_bin()
        (root / "cups-files.conf").write_text(f"""User lp
Group lp
SystemGroup root lpadmin
ServerRoot {root}
RequestRoot {spool}
TempDir {temp}
CacheDir {root / 'cache'}
StateDir {root / 'state'}
AccessLog {root / 'log' / 'access_log'}
ErrorLog {root / 'log' / 'error_log'}
PageLog {root / 'log' / 'page_log'}
Printcap {root / 'printcap'}
ServerBin {self.server_bin}
DataDir /usr/share/cups
""")
        (root / "cupsd.conf").write_text(f"""LogLevel debug
MaxLogSize 0
Listen 127.0.0.1:{self.cups_port}
Browsing No
BrowseLocalProtocols none
DefaultAuthType None
WebInterface No
JobRetryInterval 1
<Location />
  Order allow,deny
  Allow 127.0.0.1
</Location>
<Location /admin>
  Order allow,deny
  Allow 127.0.0.1
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
""")
        self.cupsd_conf, self.cups_files_conf = root / "cupsd.conf", root / "cups-files.conf"
        self.error_log_path = root / "log" / "error_log"
        check = subprocess.run(["cupsd", "-t", "-c", str(self.cupsd_conf), "-s", str(self.cups_files_conf)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"cupsd -t: {check.stdout}{check.stderr}")
        self._spawn("cupsd", ["cupsd", "-f", "-c", str(self.cupsd_conf), "-s", str(self.cups_files_conf)])
        self._wait("cupsd", lambda: "is running" in subprocess.run(
            ["lpstat", "-h", self.server, "-r"], capture_output=True, text=True).stdout)

    # -- using it ----------------------------------------------------------------------

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=60,
                                env={**os.environ, "LC_ALL": "C", "LANG": "C"})
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {result.returncode} {result.stderr}{result.stdout}")
        return result

    def add_queue(self, name: str, printer_uri: str | None = None) -> None:
        """An IPP Everywhere queue on the virtual printer (or another one), A4 by default."""
        self.run("lpadmin", "-h", self.server, "-p", name, "-E", "-v", printer_uri or self.printer_uri,
                 "-m", "everywhere", "-o", "media-default=iso_a4_210x297mm")
        self.run("cupsenable", "-h", self.server, name, check=False)

    def add_raw_queue(self, name: str) -> None:
        """A raw queue (no filters) on the AppSocket printer: the backend gets the client's bytes
        as a file (argv[6]), as when Windows clients print through Samba with vendor drivers."""
        if self.socket_printer is None:
            self.socket_printer = AppSocketPrinter(self.dir / "socket-printed").start()
        self.run("lpadmin", "-h", self.server, "-p", name, "-E", "-v", self.socket_printer.uri, "-m", "raw")
        self.run("cupsenable", "-h", self.server, name, check=False)

    def device_uri(self, queue: str) -> str:
        for line in self.run("lpstat", "-h", self.server, "-v", queue).stdout.splitlines():
            if line.startswith(f"device for {queue}: "):
                return line.split(": ", 1)[1].strip()
        raise KeyError(queue)

    def submit(self, queue: str, path: Path, *, user: str = "alice", title: str | None = None,
               copies: int = 1, options: dict[str, str] | None = None, more_files: tuple[Path, ...] = ()) -> int:
        argv = ["lp", "-h", self.server, "-d", queue, "-U", user, "-n", str(copies), "-t", title or path.name]
        for key, value in (options or {}).items():
            argv += ["-o", f"{key}={value}"]
        output = self.run(*argv, str(path), *map(str, more_files)).stdout
        match = re.search(r"request id is \S+-(\d+)", output)
        if not match:
            raise RuntimeError(f"lp said {output!r}")
        return int(match.group(1))

    def job_state(self, queue: str, job_id: int) -> dict[str, str]:
        test = self.dir / "job-state.test"
        if not test.exists():
            test.write_text(JOB_STATE_TEST)
        result = self.run("ipptool", "-t", "-d", f"job_id={job_id}", f"ipp://{self.server}/printers/{queue}",
                          str(test), check=False)
        fields = dict(re.findall(r"^\s*(job-state|job-state-reasons|job-printer-state-message) \([^)]*\) = (.*)$",
                                 result.stdout, re.M))
        if "job-state" in fields:
            fields["job-state"] = JOB_STATES.get(fields["job-state"].strip(), fields["job-state"].strip())
        return fields

    def wait_job(self, queue: str, job_id: int, timeout: float = 60.0) -> dict[str, str]:
        """Wait until the job is completed, canceled or aborted (or held); its final attributes."""
        deadline = time.monotonic() + timeout
        state: dict[str, str] = {}
        while time.monotonic() < deadline:
            state = self.job_state(queue, job_id)
            if state.get("job-state") in ("completed", "canceled", "aborted", "pending-held"):
                return state
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} still {state} after {timeout}s; error_log tail:\n{self.error_log()[-3000:]}")

    def printed_documents(self) -> list[Path]:
        return sorted(p for p in self.printed_dir.iterdir() if not p.name.endswith(".env"))

    def printed_attributes(self, document: Path) -> dict[str, str]:
        text = Path(str(document) + ".env").read_text()
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def wait_printed(self, count: int, timeout: float = 30.0) -> list[Path]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            docs = self.printed_documents()
            if len(docs) >= count and all(Path(str(d) + ".env").exists() for d in docs):
                return docs
            time.sleep(0.05)
        raise TimeoutError(f"{len(self.printed_documents())} documents printed, expected {count}")

    def error_log(self) -> str:
        """The whole debug log. MaxLogSize 0 stops cupsd rotating it; a rotated part is read first all the same."""
        parts = [self.error_log_path.with_name("error_log.O"), self.error_log_path]
        return "".join(p.read_text(errors="replace") for p in parts if p.exists())
