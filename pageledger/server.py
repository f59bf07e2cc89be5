"""Runs the WSGI app under gunicorn (gthread workers that gather requests before a thread takes them), building the runtime in each worker."""
from __future__ import annotations

import errno
import logging
import os
import pickle
import re
import selectors
import socket
import subprocess
import sys
import ssl
import threading
import time
from typing import Any

from functools import partial

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker, TConn

from adapters.tls import ServerCertificate, server_context
from pageledger.settings import Settings

log = logging.getLogger("pageledger")

FALLBACK_PORT = 6320
FALLBACK_HTTPS_PORT = 6321


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EADDRINUSE, errno.EPERM):
                return False
            raise
    return True


def choose_port(settings: Settings, explicit: int | None) -> int:
    """--port; else the configured port (PAGELEDGER_PORT or the config file's), taken even if
    busy so that the bind says so; else 80 when free and permitted; else 6320."""
    if explicit:
        return explicit
    if settings.port:
        return settings.port
    for candidate in (80, FALLBACK_PORT):
        if port_is_free(settings.host, candidate):
            return candidate
    raise SystemExit("neither port 80 nor 6320 is free: set PAGELEDGER_PORT or pass --port")


def choose_https_port(settings: Settings, explicit: int | None, http_port_automatic: bool) -> int | None:
    """--https-port; else the configured one; else, when the HTTP port was chosen
    automatically, 443 when free and permitted, else 6321; else None (HTTPS off, said at start)."""
    wanted = explicit if explicit is not None else settings.https_port
    if wanted and wanted > 0:
        return wanted
    if wanted and wanted < 0 or not http_port_automatic:
        return None
    for candidate in (443, FALLBACK_HTTPS_PORT):
        if port_is_free(settings.host, candidate):
            return candidate
    raise SystemExit("neither port 443 nor 6321 is free: set PAGELEDGER_HTTPS_PORT (or -1 for no HTTPS)")


def _projection_process(settings: Settings) -> None:
    import signal
    import threading
    import time

    from pageledger import logs
    from pageledger.bootstrap import run_projections

    logs.configure(settings.log_level)

    def leave(*_: object) -> None:
        # Unwind the main thread (the runtime closes in run_projections' finally). A handler
        # must not touch threading objects: the main thread may hold their locks right now.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    parent = os.getppid()

    def orphaned() -> None:
        # If the server was killed outright (SIGKILL), nobody tells us: stop with it.
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=orphaned, name="orphan-watch", daemon=True).start()
    pid_file = settings.data_dir / "projections.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        run_projections(settings, threading.Event())
    finally:
        pid_file.unlink(missing_ok=True)


def projection_process_main() -> None:
    """Entry point of the projection subprocess: its settings arrive pickled on stdin."""
    settings = pickle.load(sys.stdin.buffer)
    sys.stdin.close()
    _projection_process(settings)


class ProjectionProcess:
    """The projection runner as a subprocess of the gunicorn master, restarted when it dies.

    Not a multiprocessing child: gunicorn forks its workers from the master after this starts,
    and each worker would inherit multiprocessing's registry of children. A worker that exits
    (timeout, crash, SIGTERM) then terminates the runner in its atexit clean-up and fails to
    join it ("can only join a child process"), and nothing starts it again. A subprocess is
    known to no one but the master, which watches it from a thread and starts a new one, after
    a pause that grows while it keeps dying young. It runs in a process group of its own, so a
    Ctrl-C at the terminal reaches the master only, which then stops it (and the orphan watch
    stops it if the master is killed outright).
    """

    poll_seconds = 0.5
    healthy_after = 60.0  # a runner that lived this long is restarted after the shortest pause

    def __init__(self, settings: Settings, restart_delay: float = 1.0, max_restart_delay: float = 30.0) -> None:
        self.settings = settings
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self._proc: subprocess.Popen | None = None
        self._started_at = 0.0
        self._stopping = threading.Event()
        self._mutex = threading.Lock()  # spawning and stopping never interleave
        self._watch: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watch = threading.Thread(target=self._supervise, name="projection-supervisor", daemon=True)
        self._watch.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        with self._mutex:
            proc = self._proc
        if self._watch is not None:
            self._watch.join(timeout=self.poll_seconds * 4)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("projection runner (pid %d) did not stop within %.0fs; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait()

    def _spawn(self) -> None:
        with self._mutex:
            if self._stopping.is_set():
                return
            proc = subprocess.Popen(
                [sys.executable, "-c", "from pageledger.server import projection_process_main as m; m()"],
                stdin=subprocess.PIPE, process_group=0)
            proc.stdin.write(pickle.dumps(self.settings))
            proc.stdin.close()
            self._proc, self._started_at = proc, time.monotonic()

    def _supervise(self) -> None:
        delay = self.restart_delay
        while not self._stopping.wait(self.poll_seconds):
            proc = self._proc
            # gunicorn's master reaps every child it sees exit (waitpid(-1)), so the exit
            # status is often lost to us: poll() then reports 0. That it exited is what counts.
            if proc is None or proc.poll() is None:
                continue
            lived = time.monotonic() - self._started_at
            if lived >= self.healthy_after:
                delay = self.restart_delay
            log.warning("projection runner (pid %d) exited after %.0fs (status %s); restarting it in %.0fs",
                        proc.pid, lived, proc.returncode, delay)
            if self._stopping.wait(delay):
                return
            self._spawn()
            delay = min(delay * 2, self.max_restart_delay)


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")
_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def request_is_gathered(buffer: bytes | bytearray, limit: int) -> bool:
    """Whether a thread may take the request now: its head is complete and so is its body, or
    the body is larger than `limit` (it then streams, and api.limits bounds it), or the client
    waits for "100 Continue" before sending it, or the head alone reaches `limit` (gunicorn's
    parser refuses it)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return len(buffer) >= limit
    head = bytes(buffer[:end]).lower()
    if b"\r\nexpect:" in head:
        return True
    have = len(buffer) - end - 4
    if b"\r\ntransfer-encoding:" in head:
        return buffer.endswith(b"0\r\n\r\n") or len(buffer) >= limit
    match = _CONTENT_LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    return length > limit or have >= length


class BufferingThreadWorker(ThreadWorker):
    """gunicorn's gthread worker whose threads only ever see requests that have arrived.

    gthread hands each new connection, and each kept-alive one that turns readable, to a
    thread, which then blocks reading the head and body for as long as the client takes: 16
    clients trickling a login one byte at a time held all 16 threads of `up` and /healthz
    stopped answering. Here the worker's event loop (the one gthread already runs for its
    kept-alive connections) gathers the head and body, up to `request_buffer_bytes`, without
    blocking, and gives the connection to a thread only when its request is complete; a client
    that has not sent it within `request_read_seconds` is answered 408 and dropped. A body
    larger than the buffer streams in the thread, bounded by api.limits' read deadline (the
    spool upload, which reads its own body, is not). Why this rather than gevent or a proxy:
    docs/architecture.md, "Slow clients".
    """

    def init_process(self) -> None:
        settings: Settings = self.app.settings
        self.read_seconds = settings.request_read_seconds
        self.buffer_bytes = settings.request_buffer_bytes
        self.gathering: dict[TConn, float] = {}  # connection -> deadline of its request
        certificate = getattr(self.app, "certificate", None)
        self.tls_port = getattr(self.app, "https_port", None)
        self.tls_context = server_context(certificate) if certificate is not None and self.tls_port else None
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        server = listener.getsockname()
        if self.tls_context is not None and server[1] == self.tls_port:
            self._handshake(TlsConn(self.cfg, client_sock, client_addr, server, self.tls_context))
            return
        conn = TConn(self.cfg, client_sock, client_addr, server)
        if self.cfg.is_ssl:  # bytes must reach the TLS layer: gthread's own way
            client_sock.setblocking(True)
            self.enqueue_req(conn)
            return
        self._gather(conn)

    def _handshake(self, conn: "TlsConn") -> None:
        """TLS in the event loop too: a client that never finishes its handshake costs a socket,
        not a thread, and is dropped at the request deadline like a slow request."""
        try:
            conn.sock = conn.context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False,
                                                 suppress_ragged_eofs=True)
        except (OSError, ValueError):
            self.nr_conns -= 1
            conn.close()
            return
        conn.sock.setblocking(False)
        conn.front_buffer = bytearray()
        self.gathering[conn] = time.monotonic() + self.read_seconds
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_handshake_readable, conn))

    def _on_handshake_readable(self, conn: "TlsConn", client: socket.socket) -> None:
        try:
            conn.sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (OSError, ValueError):
            self._drop(conn)  # not TLS, or a handshake that failed: nothing to answer
            return
        self.poller.unregister(conn.sock)
        del self.gathering[conn]
        self._gather(conn)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._gather(conn)

    def _gather(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.front_buffer = bytearray()
        self.gathering[conn] = time.monotonic() + self.read_seconds
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_gathering_readable, conn))

    def _on_gathering_readable(self, conn: TConn, client: socket.socket) -> None:
        try:
            data = conn.sock.recv(64 * 1024)
            while data and isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
                data += conn.sock.recv(64 * 1024)  # decrypted bytes the poller cannot see
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            data = b""
        if not data:
            if b"\r\n\r\n" in conn.front_buffer:
                # The client sent a whole head and stopped sending (half-closed) before the body
                # it declared was complete: the request goes on as it is, so that it is answered
                # (a body cut short is a 400), not dropped without a word.
                self._hand_over(conn)
            else:
                self._drop(conn)  # the client went away
            return
        conn.front_buffer += data
        if request_is_gathered(conn.front_buffer, self.buffer_bytes):
            self._hand_over(conn)

    def _hand_over(self, conn: TConn) -> None:
        self.poller.unregister(conn.sock)
        del self.gathering[conn]
        conn.data_ready = True
        self.enqueue_req(conn)

    def _drop(self, conn: TConn, answer: bytes = b"") -> None:
        self.gathering.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        if answer:
            try:
                conn.sock.send(answer)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self.gathering.items()):
            if deadline <= now or not self.alive:
                self._drop(conn, _REQUEST_TIMEOUT if conn.front_buffer else b"")

    def handle(self, conn: TConn) -> Any:
        buffered = getattr(conn, "front_buffer", None)
        if buffered:
            conn.front_buffer = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(buffered))
        return super().handle(conn)

    def handle_request(self, req: Any, conn: TConn) -> Any:
        if isinstance(conn, TlsConn):
            req.scheme = "https"  # wsgi.url_scheme: TLS is ours per listener, not gunicorn's for all
        return super().handle_request(req, conn)


class TlsConn(TConn):
    """A connection to the HTTPS listener: its TLS handshake and its request are gathered by the
    worker's event loop (BufferingThreadWorker._handshake), then a thread serves it as any other.

    gunicorn's own TLS (certfile) applies to every listener and does the handshake in a thread;
    PageLedger serves plain HTTP for agents and browsers' first visit beside HTTPS, and a client
    trickling a handshake must not hold a thread, so TLS is done per listener here.
    """

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any, context: ssl.SSLContext) -> None:
        super().__init__(cfg, sock, client, server)
        self.context = context  # the socket is wrapped and its handshake done before a thread sees it


class PageLedgerServer(BaseApplication):
    """gunicorn with PageLedger's app. `projections`: "process" (a subprocess of the master
    next to the workers, restarted when it dies; what `up` uses), "thread" (inside each worker, one of them wins the runner lock)
    or "none" (another node runs them)."""

    def __init__(self, settings: Settings, port: int, *, workers: int, threads: int,
                 role: str = "all", projections: str = "process", https_port: int | None = None,
                 certificate: ServerCertificate | None = None) -> None:
        self.settings = settings
        self.https_port = https_port if certificate is not None else None
        self.certificate = certificate if https_port else None
        binds = [f"{settings.host}:{port}"] + ([f"{settings.host}:{https_port}"] if self.https_port else [])
        self.options = {
            "bind": binds,
            # sendfile would write file bodies past the TLS layer of the HTTPS listener.
            "sendfile": False,
            "workers": workers,
            "threads": threads,
            "worker_class": "pageledger.server.BufferingThreadWorker",
            "keepalive": 30,
            "timeout": 120,
            "graceful_timeout": 10,
            "accesslog": None,
            "control_socket_disable": True,
            "loglevel": settings.log_level.lower(),
        }
        self.role = role
        self.projections = projections
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if self.projections == "process":
            self.cfg.set("on_starting", self._start_projection_process)
            self.cfg.set("on_exit", self._stop_projection_process)

    def _start_projection_process(self, server: Any) -> None:
        self._runner = ProjectionProcess(self.settings)
        self._runner.start()

    def _stop_projection_process(self, server: Any) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.stop()

    def load(self) -> Any:
        # Called in each worker after the fork: connections are never shared across processes.
        from api.app import BodyLimits, create_app
        from pageledger.bootstrap import build_runtime

        runtime = build_runtime(self.settings, migrate=False)
        if self.projections == "thread":
            runtime.start_projections()
        s = self.settings
        limits = BodyLimits(json_bytes=s.max_json_bytes, batch_bytes=s.max_batch_bytes, depth=s.max_json_depth,
                            read_seconds=s.body_read_seconds)
        return create_app(runtime, role=self.role, limits=limits, https_port=self.https_port)
